// falcon detect | segment | ocr
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "core/json_file.h"
#include "engine/result_json.h"
#include "falcon/engine.h"
#include "progress.h"

namespace falcon::cli {

namespace {

const std::set<std::string> kFlags = {"no-dedup", "quiet", "help"};
const std::set<std::string> kOptions = {"model",       "image",   "query",  "min-image-size", "max-image-size",
                                        "max-new-tokens", "temperature", "top-k", "seed", "threads", "device",
                                        "dtype",       "json",    "dump",   "force-tokens", "overlay", "masks-dir",
                                        "max-image-pixels"};

std::vector<int32_t> parse_forced_tokens(const Engine& engine, const std::string& list) {
  std::vector<int32_t> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b == std::string::npos) throw InvalidArgument("--force-tokens has an empty item");
    item = item.substr(b, e - b + 1);
    const std::optional<int32_t> id = engine.token_id(item);
    if (!id) throw InvalidArgument("--force-tokens: '" + item + "' is not a token of this model");
    out.push_back(*id);
  }
  return out;
}

void write_output(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text << std::endl;
    return;
  }
  std::ofstream out(path);
  if (!out || !(out << text << "\n")) throw FileError(path + ": cannot write");
}

}  // namespace

int run_task_command(const char* task, int argc, char** argv) {
  const Args args(argc, argv, 2, kFlags, kOptions);
  const std::string t = task;
  if (args.has("help")) {
    std::printf("usage: falcon %s --model DIR --image FILE%s [options]\n(see `falcon --help`)\n", task,
                t == "ocr" ? "" : " --query TEXT");
    return 0;
  }
  Request req;
  req.task = t == "detect" ? Task::Detection : t == "segment" ? Task::Segmentation : Task::OcrPlain;
  if (req.task != Task::OcrPlain) req.query = args.required("query");
  const std::string image_path = args.required("image");
  req.image_bytes = read_binary_file(image_path, size_t(512) << 20);
  req.min_image_size = args.integer("min-image-size", 0);
  req.max_image_size = args.integer("max-image-size", 0);
  req.sampling.max_new_tokens = args.integer("max-new-tokens", 0);
  req.sampling.temperature = float(args.number("temperature", 0.0));
  req.sampling.top_k = args.integer("top-k", 0);
  req.sampling.seed = args.u64("seed", 0);
  if (args.has("no-dedup")) req.sampling.coord_dedup_threshold = 0.f;
  req.dump_path = args.str("dump");

  EngineOptions opts;
  opts.model_dir = args.required("model");
  opts.device = args.str("device", "cpu");
  opts.weight_dtype = args.str("dtype");
  opts.threads = args.integer("threads", 0);
  opts.max_image_pixels = int64_t(args.number("max-image-pixels", double(opts.max_image_pixels)));
  opts.max_batch = 1;
  Progress progress(args.has("quiet"));
  opts.progress = [&](std::string_view s, double f) { progress.update(s, f); };
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> engine = Engine::load(opts);
  progress.done();
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (args.has("force-tokens")) req.sampling.forced_tokens = parse_forced_tokens(*engine, args.str("force-tokens"));

  const Result result = engine->run(req);
  nlohmann::json j = result_to_json(result);
  j["task"] = task_name(req.task);
  if (req.task != Task::OcrPlain) j["query"] = req.query;
  j["model"] = engine->info().variant;
  j["timings_ms"]["load"] = load_ms;
  write_output(args.str("json"), j.dump(2));
  return 0;
}

}  // namespace falcon::cli
