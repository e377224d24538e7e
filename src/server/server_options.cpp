#include "server_options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "falcon/error.h"

namespace falcon::server {

namespace {

const std::set<std::string> kFlags = {"help", "allow-url", "allow-forced-tokens", "access-log"};
const std::set<std::string> kOptions = {"model",
                                        "model-id",
                                        "host",
                                        "port",
                                        "device",
                                        "dtype",
                                        "threads",
                                        "max-batch",
                                        "max-queue",
                                        "timeout-s",
                                        "api-key",
                                        "max-body-mb",
                                        "max-image-pixels",
                                        "max-url-mb",
                                        "step-delay-ms",
                                        "http-threads",
                                        "image-cache"};

double parse_number(const std::string& name, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v.c_str(), &end);
  if (errno || end == v.c_str() || *end || !std::isfinite(x) || x < lo || x > hi) {
    throw InvalidArgument("--" + name + " expects a number in [" + std::to_string(int64_t(lo)) +
                          ", " + std::to_string(int64_t(hi)) + "], got '" + v + "'");
  }
  return x;
}

int64_t parse_integer(const std::string& name, const std::string& v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (errno || end == v.c_str() || *end || x < lo || x > hi) {
    throw InvalidArgument("--" + name + " expects an integer in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "], got '" + v + "'");
  }
  return x;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t b = 0;
  while (b <= s.size()) {
    const size_t e = std::min(s.find(',', b), s.size());
    if (e > b) out.push_back(s.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

}  // namespace

const char* server_usage() {
  return "usage: falcon serve --model DIR [options]\n"
         "\n"
         "  --host H              address to bind (default 127.0.0.1; 0.0.0.0 for every "
         "interface)\n"
         "  --port P              port (default 7860; 0 picks a free one, printed at start)\n"
         "  --device D[,D...]     cpu | cuda; one engine worker thread per device (default cpu)\n"
         "  --dtype D             weight dtype: f32 | bf16 | f16 | q8 | q4 (default: as stored)\n"
         "  --threads N           CPU threads (default: all cores)\n"
         "  --max-batch N         requests decoded together per worker (default 16)\n"
         "  --max-queue N         requests waiting beyond the batch before 503 (default 64)\n"
         "  --image-cache N       images whose prompt prefix is kept for more queries (engine "
         "default)\n"
         "  --timeout-s S         per-request limit in seconds, then 504 (default 300; 0 = none)\n"
         "  --api-key KEY         require 'Authorization: Bearer KEY' (or set FALCON_API_KEY)\n"
         "  --allow-url           accept image.url (the server fetches it; off by default)\n"
         "  --max-body-mb N       largest request body (default 32)\n"
         "  --max-image-pixels N  largest decoded image (default 89478485)\n"
         "  --max-url-mb N        largest image fetched from a URL (default 32)\n"
         "  --model-id NAME       model_id reported by /v1/health (default: the variant's HF id)\n"
         "  --allow-forced-tokens accept forced_tokens in requests (teacher forcing; debugging)\n"
         "  --access-log          log every request on stderr (errors are always logged)\n"
         "  --http-threads N      HTTP connection threads (default: max-batch + max-queue + 16)\n"
         "  --step-delay-ms N     sleep N ms after every engine step (tests only)\n";
}

ServerOptions parse_server_options(int argc, char** argv, int first, bool& help) {
  std::map<std::string, std::string> values;
  std::set<std::string> flags;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw InvalidArgument("unexpected argument '" + a + "'");
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (kFlags.count(name)) {
      if (inline_value) throw InvalidArgument("--" + name + " takes no value");
      flags.insert(name);
    } else if (kOptions.count(name)) {
      if (!inline_value) {
        if (i + 1 >= argc) throw InvalidArgument("--" + name + " needs a value");
        value = argv[++i];
      }
      values[name] = value;
    } else {
      throw InvalidArgument("unknown option --" + name + " (see falcon serve --help)");
    }
  }
  help = flags.count("help") > 0;
  ServerOptions o;
  if (help) return o;
  auto has = [&](const char* n) { return values.count(n) > 0; };
  if (!has("model") || values["model"].empty()) throw InvalidArgument("--model is required");
  o.model_dir = values["model"];
  if (has("model-id")) o.model_id = values["model-id"];
  if (has("host")) o.host = values["host"];
  if (o.host.empty()) throw InvalidArgument("--host is empty");
  if (has("port")) o.port = int(parse_integer("port", values["port"], 0, 65535));
  if (has("device")) o.devices = split_list(values["device"]);
  if (o.devices.empty()) throw InvalidArgument("--device lists no device");
  if (has("dtype")) o.dtype = values["dtype"];
  if (has("threads")) o.threads = int(parse_integer("threads", values["threads"], 0, 4096));
  if (has("max-batch")) o.max_batch = int(parse_integer("max-batch", values["max-batch"], 1, 4096));
  if (has("max-queue"))
    o.max_queue = int(parse_integer("max-queue", values["max-queue"], 0, 1 << 20));
  if (has("image-cache"))
    o.image_cache = int(parse_integer("image-cache", values["image-cache"], 0, 1 << 16));
  if (has("timeout-s")) o.timeout_s = parse_number("timeout-s", values["timeout-s"], 0, 1e7);
  if (has("api-key")) {
    o.api_key = values["api-key"];
    if (o.api_key.empty()) throw InvalidArgument("--api-key is empty");
  } else if (const char* env = std::getenv("FALCON_API_KEY"); env && *env) {
    o.api_key = env;
  }
  o.allow_url = flags.count("allow-url") > 0;
  o.allow_forced_tokens = flags.count("allow-forced-tokens") > 0;
  o.access_log = flags.count("access-log") > 0;
  if (has("max-body-mb")) {
    o.max_body_bytes =
        int64_t(parse_number("max-body-mb", values["max-body-mb"], 0.001, 1 << 20) * (1 << 20));
  }
  if (has("max-url-mb")) {
    o.max_url_bytes =
        int64_t(parse_number("max-url-mb", values["max-url-mb"], 0.001, 1 << 20) * (1 << 20));
  }
  if (has("max-image-pixels")) {
    o.max_image_pixels =
        parse_integer("max-image-pixels", values["max-image-pixels"], 1, int64_t(1) << 40);
  }
  if (has("step-delay-ms"))
    o.step_delay_ms = int(parse_integer("step-delay-ms", values["step-delay-ms"], 0, 60000));
  if (has("http-threads"))
    o.http_threads = int(parse_integer("http-threads", values["http-threads"], 1, 100000));
  return o;
}

}  // namespace falcon::server
