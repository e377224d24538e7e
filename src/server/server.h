// `falcon serve`: the REST API (compatible with the reference Python server), continuous
// batching on one engine worker thread per device, and the web page. See docs/server.md.
#pragma once

namespace falcon::server {

// argv[1] is "serve"; options start at argv[2]. Returns the exit status after a clean
// shutdown (SIGINT / SIGTERM drain the requests in flight). Throws the engine's typed
// errors (a model that does not load, a port that cannot be bound) for the CLI to report.
int serve_main(int argc, char** argv);

}  // namespace falcon::server
