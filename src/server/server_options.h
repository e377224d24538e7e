// `falcon serve` options and their parsing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace falcon::server {

struct ServerOptions {
  std::string model_dir;
  std::string model_id;                     // reported by /v1/health; "" = from the variant
  std::string host = "127.0.0.1";           // loopback unless told otherwise
  int port = 7860;                          // 0: any free port (printed at start)
  std::vector<std::string> devices{"cpu"};  // one engine worker thread per device
  std::string dtype;                        // engine weight dtype; "" = as stored
  int threads = 0;                          // CPU threads; 0 = all cores
  int max_batch = 16;                       // requests decoded together, per worker
  int max_queue = 64;                       // requests waiting beyond the batch, per worker
  int image_cache = -1;    // images whose prefix the engine keeps; -1 = its default
  double timeout_s = 300;  // per request, from arrival; 0 = none
  std::string api_key;     // "" = no authentication
  bool allow_url = false;  // image.url fetches (server-side requests)
  int64_t max_body_bytes = int64_t(32) << 20;
  int64_t max_image_pixels = 89'478'485;  // Pillow's default guard
  int64_t max_url_bytes = int64_t(32) << 20;
  bool allow_forced_tokens = false;  // teacher forcing per request (tests, debugging)
  int step_delay_ms = 0;             // tests: slow every engine step down
  bool access_log = false;           // one stderr line per request
  int http_threads = 0;              // 0 = enough for every admitted request + 16
};

// Parses argv[first..]. Throws InvalidArgument naming the bad option. Sets `help` when
// --help was given (nothing else is checked then).
ServerOptions parse_server_options(int argc, char** argv, int first, bool& help);

const char* server_usage();

}  // namespace falcon::server
