#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "api_server.h"
#include "server.h"

namespace falcon::server {

namespace {

void log_line(const std::string& s) {
  std::fprintf(stderr, "falcon serve: %s\n", s.c_str());
  std::fflush(stderr);
}

}  // namespace

int serve_main(int argc, char** argv) {
  bool help = false;
  const ServerOptions options = parse_server_options(argc, argv, 2, help);
  if (help) {
    std::fputs(server_usage(), stdout);
    return 0;
  }

  // SIGINT / SIGTERM are blocked in every thread (the mask is inherited, so this comes
  // before any thread starts) and taken synchronously below: no handler ever interrupts
  // the engine or the HTTP library. A peer that vanishes mid-write must not kill us.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  ApiServer server(options);
  const int port = server.start();
  std::printf("falcon serve: listening on http://%s:%d (model %s)\n", options.host.c_str(), port,
              options.model_dir.c_str());
  std::fflush(stdout);
  if (options.host != "127.0.0.1" && options.host != "localhost" && options.host != "::1" &&
      options.api_key.empty()) {
    log_line("warning: listening on " + options.host + " without --api-key");
  }

  std::atomic<bool> http_done{false};
  std::thread http([&] {
    server.listen();
    http_done = true;
  });

  const auto t0 = std::chrono::steady_clock::now();
  bool draining = false, announced = false;
  std::exception_ptr load_error;
  while (!http_done) {
    const timespec tick{0, 100'000'000};
    const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
    if (sig > 0) {
      if (draining) {  // a second signal: the operator does not want to wait
        log_line("second signal: exiting without draining");
        std::fflush(nullptr);
        _exit(128 + sig);
      }
      draining = true;
      log_line(std::string("got ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
               ": finishing the requests in flight (send it again to exit now)");
      server.stop();
    }
    if (!announced && server.workers().ready()) {
      announced = true;
      const ModelInfo& i = *server.workers().info();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char buf[256];
      std::snprintf(buf, sizeof buf, "model ready: %s on %s (%s), loaded in %.1f s",
                    i.variant.c_str(), i.device.c_str(), i.compute_dtype.c_str(), s);
      log_line(buf);
    }
    if (!draining && !server.workers().ready() && !server.workers().loading()) {
      load_error = server.workers().load_error();
      if (load_error) {
        draining = true;
        server.stop();
      }
    }
  }
  http.join();
  server.stop_workers();
  if (load_error) std::rethrow_exception(load_error);
  log_line("stopped");
  return 0;
}

}  // namespace falcon::server
