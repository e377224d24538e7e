// One request through the engine on CUDA with the device start and end of every kernel and
// copy (CUPTI, kernel_timeline.h): where the device waits for the host during a request.
//
//   engine_timeline MODEL_DIR [detection|segmentation|ocr] [WxH] [NEW_TOKENS] [DTYPE] [GAP_US]
//
// After two warm-up requests and a traced one (discarded: CUPTI's set-up), it traces a fourth,
// each on its own random image so no image prefix is reused. It prints, for the prefill window
// (the engine's prefill_ms, placed after its preprocess_ms) and for the whole request: the
// device's busy and idle time, the widest idle gaps with the kernels around them, and the
// busiest kernels.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "falcon/engine.h"
#include "io/png_encode.h"
#include "kernel_timeline.h"

using namespace falcon;

namespace {

std::string random_png(int w, int h, uint64_t seed) {
  std::vector<uint8_t> px(size_t(w) * size_t(h) * 3);
  std::mt19937_64 rng(seed);
  for (auto& p : px) p = uint8_t(rng());
  return io::encode_png(px.data(), w, h, 3);
}

// Busy time (the union of the spans), idle gaps and per-name totals over [begin, end) ns.
void report(const char* title, const std::vector<bench::KernelSpan>& spans, uint64_t t0, uint64_t begin, uint64_t end,
            double gap_us) {
  std::vector<const bench::KernelSpan*> in;
  for (const bench::KernelSpan& s : spans) {
    if (s.end_ns > begin && s.start_ns < end) in.push_back(&s);
  }
  std::printf("\n== %s: %.3f .. %.3f ms after the request started, %zu kernels and copies ==\n", title,
              double(begin - t0) / 1e6, double(end - t0) / 1e6, in.size());
  if (in.empty()) return;
  struct Gap {
    uint64_t at, ns;
    const bench::KernelSpan *before, *after;
  };
  std::vector<Gap> gaps;
  uint64_t busy = 0, cursor = begin;
  const bench::KernelSpan* last = nullptr;
  for (const bench::KernelSpan* s : in) {
    const uint64_t a = std::max(s->start_ns, begin), b = std::min(s->end_ns, end);
    if (a > cursor) gaps.push_back({cursor, a - cursor, last, s});
    if (b > cursor) {
      busy += b - std::max(a, cursor);
      cursor = b;
      last = s;
    }
  }
  if (end > cursor) gaps.push_back({cursor, end - cursor, last, nullptr});
  std::printf("device busy %.3f ms, idle %.3f ms; first activity %.3f ms into the window\n", double(busy) / 1e6,
              double(end - begin - busy) / 1e6, double(in.front()->start_ns > begin ? in.front()->start_ns - begin : 0) / 1e6);
  std::sort(gaps.begin(), gaps.end(), [](const Gap& a, const Gap& b) { return a.ns > b.ns; });
  double small_gaps = 0;
  int n_small = 0;
  for (const Gap& g : gaps) {
    if (double(g.ns) / 1e3 < gap_us) {
      small_gaps += double(g.ns) / 1e3;
      ++n_small;
    }
  }
  std::printf("gaps under %.0f us: %d, %.1f us together; the wider ones:\n", gap_us, n_small, small_gaps);
  int shown = 0;
  for (const Gap& g : gaps) {
    if (double(g.ns) / 1e3 < gap_us || shown == 25) break;
    std::printf("  at %8.3f ms  idle %8.1f us  after %-28s before %s\n", double(g.at - t0) / 1e6, double(g.ns) / 1e3,
                g.before ? g.before->name.c_str() : "(window start)", g.after ? g.after->name.c_str() : "(window end)");
    ++shown;
  }
  std::map<std::string, std::pair<double, int>> by_name;
  for (const bench::KernelSpan* s : in) {
    auto& e = by_name[s->name];
    e.first += double(std::min(s->end_ns, end) - std::max(s->start_ns, begin)) / 1e3;
    ++e.second;
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::printf("busiest (span sums overlap where kernels run side by side):\n");
  for (size_t i = 0; i < rows.size() && i < 14; ++i) {
    std::printf("  %10.1f us  %5d x  %s\n", rows[i].second.first, rows[i].second.second, rows[i].first.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: engine_timeline MODEL_DIR [detection|segmentation|ocr] [WxH] [NEW_TOKENS] [DTYPE] [GAP_US]\n");
    return 2;
  }
  if (!bench::KernelTimeline::available()) {
    std::fprintf(stderr, "engine_timeline: this build has no CUPTI\n");
    return 1;
  }
  try {
    EngineOptions opts;
    opts.model_dir = argv[1];
    opts.device = "cuda";
    opts.weight_dtype = argc > 5 ? argv[5] : "";
    opts.max_batch = 1;
    std::unique_ptr<Engine> engine = Engine::load(opts);
    Request req;
    req.task = task_from_name(argc > 2 ? argv[2] : (engine->info().variant == "ocr" ? "ocr" : "detection"));
    req.query = "all the objects";
    int w = 1024, h = 768;
    if (argc > 3 && std::sscanf(argv[3], "%dx%d", &w, &h) != 2) throw InvalidArgument("image size: WxH");
    req.sampling.max_new_tokens = argc > 4 ? std::atoi(argv[4]) : 32;
    req.sampling.ignore_stop = true;
    const double gap_us = argc > 6 ? std::atof(argv[6]) : 20.0;
    for (int r = 0; r < 2; ++r) {
      req.image_bytes = random_png(w, h, uint64_t(r) + 1);
      engine->run(req);
    }
    bench::KernelTimeline timeline;
    // A first traced request, discarded: CUPTI's own set-up costs land in it.
    req.image_bytes = random_png(w, h, 3);
    timeline.start(/*copies=*/true);
    engine->run(req);
    timeline.stop();
    req.image_bytes = random_png(w, h, 4);
    timeline.start(/*copies=*/true);
    const uint64_t t0 = bench::KernelTimeline::now_ns();
    const Result res = engine->run(req);
    const uint64_t t1 = bench::KernelTimeline::now_ns();
    const std::vector<bench::KernelSpan> spans = timeline.stop();
    const Timings& t = res.timings;
    std::printf("%s %s %dx%d, %d prompt tokens, %d new: total %.2f ms = preprocess %.2f, prefill %.2f (host %.2f), "
                "segmentation %.2f, decode %.2f (%.3f ms/token)\n",
                engine->info().variant.c_str(), task_name(req.task), w, h, res.input_tokens, res.output_tokens,
                t.total_ms, t.preprocess_ms, t.prefill_ms, t.prefill_host_ms, t.segmentation_ms, t.decode_ms,
                res.output_tokens > 1 ? t.decode_ms / (res.output_tokens - 1) : 0.0);
    const uint64_t p0 = t0 + uint64_t((t.queue_ms + t.preprocess_ms) * 1e6);
    const uint64_t p1 = p0 + uint64_t(t.prefill_ms * 1e6);
    report("prefill", spans, t0, p0, std::min(p1, t1), gap_us);
    report("whole request", spans, t0, t0, t1, gap_us);
    std::printf("\nthe prefill's first 30 kernels and copies:\n");
    int shown = 0;
    for (const bench::KernelSpan& s : spans) {
      if (s.end_ns < p0) continue;
      std::printf("  %8.3f .. %8.3f ms  %-28s grid %d x %d x %d\n", double(s.start_ns - t0) / 1e6,
                  double(s.end_ns - t0) / 1e6, s.name.c_str(), s.grid_x, s.grid_y, s.grid_z);
      if (++shown == 30) break;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_timeline: %s\n", e.what());
    return 1;
  }
  return 0;
}
