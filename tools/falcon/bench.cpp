// falcon bench: prefill and decode timings on a random image, and the CPU decode speed as a
// ratio to the memory floor (bytes read per token / measured bandwidth).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "core/parallel.h"
#include "falcon/engine.h"
#include "io/png_encode.h"
#include "ops/op_profile.h"
#include "progress.h"

namespace falcon::cli {

namespace {

// Read bandwidth of this machine with every thread: sum a buffer far larger than the caches.
double measure_read_bandwidth_gbs() {
  const size_t n = size_t(1) << 28;  // 1 GiB of floats
  std::vector<float> buf(n, 1.0f);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<double> partial(size_t(num_threads()) * 8, 0.0);
    parallel_for(int64_t(n), 1 << 20, [&](int64_t b, int64_t e) {
      float acc[16] = {};
      for (int64_t i = b; i + 16 <= e; i += 16) {
        for (int j = 0; j < 16; ++j) acc[j] += buf[size_t(i + j)];
      }
      double s = 0;
      for (float a : acc) s += a;
      partial[size_t(b * int64_t(num_threads()) / int64_t(n)) * 8] += s;
    });
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double sink = 0;
    for (double p : partial) sink += p;
    if (sink < 0) std::printf("%f", sink);  // keep the sum alive
    best = std::max(best, double(n) * 4 / sec / 1e9);
  }
  return best;
}

std::string random_png(int w, int h, uint64_t seed) {
  std::vector<uint8_t> px(size_t(w) * size_t(h) * 3);
  std::mt19937_64 rng(seed);
  for (auto& p : px) p = uint8_t(rng());
  return io::encode_png(px.data(), w, h, 3);
}

}  // namespace

int bench_command(int argc, char** argv) {
  const auto t_start = std::chrono::steady_clock::now();  // ~ process start: time to first result
  const Args args(argc, argv, 2, {"help", "quiet", "no-bandwidth"},
                  {"model", "task", "image-size", "new-tokens", "runs", "device", "dtype", "threads", "batch",
                   "json", "query", "min-image-size", "max-image-size"});
  if (args.has("help")) {
    std::printf(
        "usage: falcon bench --model DIR [--task detection|segmentation|ocr] [--image-size WxH]\n"
        "         [--new-tokens N] [--runs N] [--batch N] [--device cpu|cuda] [--dtype D] [--threads N]\n"
        "         [--json FILE] [--no-bandwidth]\n");
    return 0;
  }
  int w = 1024, h = 768;
  if (args.has("image-size") && std::sscanf(args.str("image-size").c_str(), "%dx%d", &w, &h) != 2) {
    throw InvalidArgument("--image-size expects WxH, e.g. 1024x768");
  }
  if (w < 16 || h < 16 || w > 8192 || h > 8192) throw InvalidArgument("--image-size out of range");
  const int new_tokens = args.integer("new-tokens", 32);
  const int runs = std::max(1, args.integer("runs", 3));
  const int batch = std::max(1, args.integer("batch", 1));

  EngineOptions opts;
  opts.model_dir = args.required("model");
  opts.device = args.str("device", "cpu");
  opts.weight_dtype = args.str("dtype");
  opts.threads = args.integer("threads", 0);
  opts.max_batch = batch;
  Progress progress(args.has("quiet"));
  opts.progress = [&](std::string_view s, double f) { progress.update(s, f); };
  const auto t_load = std::chrono::steady_clock::now();
  std::unique_ptr<Engine> engine = Engine::load(opts);
  progress.done();
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();
  const ModelInfo& info = engine->info();

  Request req;
  const std::string task = args.str("task", info.variant == "ocr" ? "ocr" : "detection");
  req.task = task_from_name(task == "segment" ? "segmentation" : task == "detect" ? "detection" : task);
  req.query = args.str("query", "all the objects");
  req.min_image_size = args.integer("min-image-size", 0);
  req.max_image_size = args.integer("max-image-size", 0);
  req.sampling.max_new_tokens = new_tokens;
  req.sampling.ignore_stop = true;

  struct Run {
    double total, prefill, decode, seg, prefill_host, preprocess;
    int in, out;
  };
  std::vector<Run> results;
  double wall_batch = 0, first_result_ms = 0;
  int total_new = 0;
  for (int r = 0; r <= runs; ++r) {  // run 0 is the warm-up
    req.image_bytes = random_png(w, h, uint64_t(r) + 1);
    if (batch == 1) {
      const Result res = engine->run(req);
      if (r > 0) {
        results.push_back({res.timings.total_ms, res.timings.prefill_ms, res.timings.decode_ms,
                           res.timings.segmentation_ms, res.timings.prefill_host_ms, res.timings.preprocess_ms,
                           res.input_tokens, res.output_tokens});
      }
    } else {
      int done = 0, tokens = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < batch; ++i) {
        engine->submit(req, [&](Engine::RequestId, Result* res, const std::exception_ptr& e) {
          ++done;
          if (res) tokens += res->output_tokens;
          if (e) std::rethrow_exception(e);
        });
      }
      while (engine->step()) {
      }
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) {
        wall_batch += sec;
        total_new += tokens;
      }
      if (done != batch) throw InternalError("batch ended early");
    }
    if (r == 0) {
      first_result_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_start).count();
      ops::reset_op_profile();  // FALCON_OP_PROFILE: the measured runs only
    }
  }

  nlohmann::json out = {{"model", info.variant}, {"device", info.device}, {"compute", info.compute_dtype},
                        {"image", std::to_string(w) + "x" + std::to_string(h)}, {"task", task_name(req.task)},
                        {"new_tokens", new_tokens}, {"runs", runs}, {"load_ms", load_ms}, {"threads", num_threads()},
                        {"first_result_ms", first_result_ms}};
  std::printf("load %.0f ms; first result %.0f ms after start (warm-up run included)\n", load_ms, first_result_ms);
  if (batch == 1) {
    auto best = [&](auto field) {
      double b = 1e300;
      for (const Run& x : results) b = std::min(b, field(x));
      return b;
    };
    const double prefill = best([](const Run& x) { return x.prefill; });
    const double decode = best([](const Run& x) { return x.decode; });
    const double total = best([](const Run& x) { return x.total; });
    const double seg = best([](const Run& x) { return x.seg; });
    const int in_tokens = results.front().in, out_tokens = results.front().out;
    const double per_token = out_tokens > 1 ? decode / double(out_tokens - 1) : 0;
    out["input_tokens"] = in_tokens;
    out["prefill_ms"] = prefill;
    out["prefill_host_ms"] = best([](const Run& x) { return x.prefill_host; });
    // Image decoding, resizing, patches and the prompt's tokens (the request's host work
    // before the prefill).
    out["preprocess_ms"] = best([](const Run& x) { return x.preprocess; });
    out["segmentation_ms"] = seg;
    out["decode_ms"] = decode;
    out["decode_ms_per_token"] = per_token;
    out["total_ms"] = total;
    const double preprocess = out["preprocess_ms"].get<double>();
    std::printf("%-16s %-8s %-10s %7s %13s %10s %12s %14s %10s\n", "model", "device", "image", "prompt",
                "preprocess_ms", "prefill_ms", "decode_ms", "ms_per_token", "total_ms");
    std::printf("%-16s %-8s %-10s %7d %13.1f %10.1f %12.1f %14.2f %10.1f\n", info.variant.c_str(),
                info.device.c_str(), (std::to_string(w) + "x" + std::to_string(h)).c_str(), in_tokens, preprocess,
                prefill, decode, per_token, total);
    if (info.device == "cpu" && !args.has("no-bandwidth")) {
      const double gbs = measure_read_bandwidth_gbs();
      // Bytes read per decode token: every linear weight once, plus the KV cache.
      const double bytes_per_param = info.compute_dtype.find("BF16 weights") != std::string::npos ||
                                             info.compute_dtype.find("F16 weights") != std::string::npos
                                         ? 2.0
                                     : info.compute_dtype.find("Q8 weights") != std::string::npos ? 36.0 / 32
                                     : info.compute_dtype.find("Q4 weights") != std::string::npos ? 20.0 / 32
                                                                                                  : 4.0;
      const double D = info.dim, F = info.ffn_dim, L = info.n_layers, V = info.vocab_size;
      const double qkv = (info.n_heads + 2.0 * info.n_kv_heads) * info.head_dim;
      const double layer_params = qkv * D + D * info.n_heads * info.head_dim + 2 * F * D + D * F;
      const double weight_bytes = (L * layer_params + V * D) * bytes_per_param;
      const double ctx = in_tokens + out_tokens / 2.0;
      const double kv_bytes = L * ctx * (info.n_heads + info.n_kv_heads) * info.head_dim * 4.0;
      const double floor_ms = (weight_bytes + kv_bytes) / (gbs * 1e9) * 1e3;
      out["bandwidth_gbs"] = gbs;
      out["bytes_per_token"] = weight_bytes + kv_bytes;
      out["floor_ms_per_token"] = floor_ms;
      out["ratio_to_floor"] = per_token / floor_ms;
      std::printf("memory floor: %.1f MB/token at %.1f GB/s = %.2f ms/token; measured %.2f ms/token = %.2fx floor\n",
                  (weight_bytes + kv_bytes) / 1e6, gbs, floor_ms, per_token, per_token / floor_ms);
    }
  } else {
    const double sec = wall_batch / runs;
    out["batch"] = batch;
    out["wall_s"] = sec;
    out["images_per_s"] = batch / sec;
    out["new_tokens_per_s"] = total_new / runs / sec;
    std::printf("batch of %d: %.2f s, %.2f images/s, %.0f new tokens/s\n", batch, sec, batch / sec,
                total_new / runs / sec);
  }
  if (args.has("json")) {
    std::ofstream f(args.str("json"));
    f << out.dump(2) << "\n";
    if (!f) throw FileError(args.str("json") + ": cannot write");
  }
  return 0;
}

}  // namespace falcon::cli
