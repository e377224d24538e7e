// falcon detect | segment | ocr
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "core/json_file.h"
#include "engine/result_json.h"
#include "falcon/engine.h"
#include "io/image.h"
#include "io/image_convert.h"
#include "io/overlay.h"
#include "io/png_encode.h"
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

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !out.write(bytes.data(), std::streamsize(bytes.size()))) throw FileError(path + ": cannot write");
}

void write_output(const std::string& path, const std::string& text) {
  if (path.empty() || path == "-") {
    std::cout << text << std::endl;
    return;
  }
  write_file(path, text + "\n");
}

// The original image with every query's detections drawn on it.
void write_overlay(const std::string& path, const std::string& image_bytes, const std::vector<Result>& results,
                   const std::vector<std::string>& queries, int64_t max_pixels) {
  io::DecodeLimits limits;
  limits.max_pixels = max_pixels;
  const io::DecodedImage rgb = io::convert_to_rgb(io::decode_image(image_bytes, limits));
  std::vector<io::OverlayItem> items;
  for (size_t q = 0; q < results.size(); ++q) {
    for (const Detection& d : results[q].detections) {
      io::OverlayItem it;
      it.box = d.bbox;
      if (d.mask && !d.mask->pixels.empty()) it.mask = d.mask->pixels.data();
      it.label = queries[q].empty() ? std::string("object") : queries[q];
      items.push_back(std::move(it));
    }
  }
  write_file(path, io::overlay_png(rgb.pixels.data(), rgb.width, rgb.height, items));
}

// One PNG per mask: <dir>/mask_<query>_<k>.png, white inside.
void write_masks(const std::string& dir, const std::vector<Result>& results) {
  std::filesystem::create_directories(dir);
  for (size_t q = 0; q < results.size(); ++q) {
    for (size_t k = 0; k < results[q].detections.size(); ++k) {
      const auto& m = results[q].detections[k].mask;
      if (!m || m->pixels.empty()) continue;
      std::vector<uint8_t> gray(m->pixels.size());
      for (size_t i = 0; i < gray.size(); ++i) gray[i] = m->pixels[i] ? 255 : 0;
      write_file(dir + "/mask_" + std::to_string(q) + "_" + std::to_string(k) + ".png",
                 io::encode_png(gray.data(), m->width, m->height, 1));
    }
  }
}

nlohmann::json result_document(const Result& r, Task task, const std::string& query, const ModelInfo& info) {
  nlohmann::json j = result_to_json(r);
  j["task"] = task_name(task);
  if (task != Task::OcrPlain) j["query"] = query;
  j["model"] = info.variant;
  // The reference server's per-object fields, so its clients read these files too.
  for (auto& d : j["detections"]) {
    d["label"] = query;
    d["height"] = r.image_height;
    d["width"] = r.image_width;
  }
  return j;
}

}  // namespace

int run_task_command(const char* task, int argc, char** argv) {
  const Args args(argc, argv, 2, kFlags, kOptions);
  const std::string t = task;
  if (args.has("help")) {
    std::printf("usage: falcon %s --model DIR --image FILE%s [options]\n(see `falcon --help`)\n", task,
                t == "ocr" ? "" : " --query TEXT [--query TEXT ...]");
    return 0;
  }
  Request req;
  req.task = t == "detect" ? Task::Detection : t == "segment" ? Task::Segmentation : Task::OcrPlain;
  std::vector<std::string> queries = {""};
  if (req.task != Task::OcrPlain) {
    args.required("query");
    queries = args.all("query");
  }
  const std::string image_path = args.required("image");
  req.image_bytes = read_binary_file(image_path, size_t(512) << 20);
  req.min_image_size = args.integer("min-image-size", 0);
  req.max_image_size = args.integer("max-image-size", 0);
  req.sampling.max_new_tokens = args.integer("max-new-tokens", 0);
  req.sampling.temperature = float(args.number("temperature", 0.0));
  req.sampling.top_k = args.integer("top-k", 0);
  req.sampling.seed = args.u64("seed", 0);
  if (args.has("no-dedup")) req.sampling.coord_dedup_threshold = 0.f;
  req.keep_mask_pixels = args.has("overlay") || args.has("masks-dir");
  if (args.has("dump") && queries.size() > 1) throw InvalidArgument("--dump takes one query");
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

  // Several queries on one image: the image block and its features are computed once.
  std::vector<Result> results;
  nlohmann::json docs = nlohmann::json::array();
  for (const std::string& q : queries) {
    req.query = q;
    results.push_back(engine->run(req));
    nlohmann::json j = result_document(results.back(), req.task, q, engine->info());
    j["timings_ms"]["load"] = load_ms;
    docs.push_back(std::move(j));
  }
  write_output(args.str("json"), (docs.size() == 1 ? docs[0] : docs).dump(2));
  if (args.has("overlay")) write_overlay(args.str("overlay"), req.image_bytes, results, queries, opts.max_image_pixels);
  if (args.has("masks-dir")) write_masks(args.str("masks-dir"), results);
  return 0;
}

}  // namespace falcon::cli
