// falcon serve: the REST API and web page (src/server).
#include "commands.h"
#include "falcon/error.h"

#ifdef FALCON_HAS_SERVER
#include "server/server.h"
#endif

namespace falcon::cli {

int serve_command(int argc, char** argv) {
#ifdef FALCON_HAS_SERVER
  return server::serve_main(argc, argv);
#else
  (void)argc;
  (void)argv;
  throw Unsupported("this build has no server");
#endif
}

}  // namespace falcon::cli
