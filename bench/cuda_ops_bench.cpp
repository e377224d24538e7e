// CUDA forward-pass ops at the real model's shapes, timed with CUDA events (docs/cuda.md).
//
//   cuda_ops_bench [--quick] [prefill|decode|decode-sweep|decode-series|small|linear|q8|q4|decode-ops|
//                   decode-variants|decode-gemv|stack ...]   (default: all sections but decode-sweep,
//                   decode-series, decode-variants and decode-gemv)
//
// Tables: prefill attention (S = 3,095, image block of 3,077 = cls + 4 registers + 3,072
// patches; TFLOP/s over the visible pairs), linear at the 0.6B shapes (M = 3,095 in TFLOP/s;
// M = 1..64 in GB/s of weights, rotating over 28 layers' copies so the L2 cannot serve them),
// decode attention at T = 3,200 (contiguous and paged), the small ops, then a whole 28-layer
// prefill and a whole decode step (stream and CUDA graph) against the PERF.md targets.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/activation.h"
#include "ops/argmax.h"
#include "ops/decode_layers.h"
#include "ops/attention.h"
#include "ops/cuda_tuning.h"
#include "ops/convert.h"
#include "ops/cuda_context.h"
#include "ops/embedding.h"
#include "ops/feed_forward.h"
#include "ops/linear.h"
#include "ops/paged_attention.h"
#include "ops/paged_attention_qkv.h"
#include "ops/qk_norm_rope.h"
#include "ops/rms_norm.h"
#include "kernel_timeline.h"

using namespace falcon;

namespace {

bool g_quick = false;
std::vector<std::string> g_only;  // sections named on the command line (none: all)

bool section(const char* name) {
  return g_only.empty() || std::find(g_only.begin(), g_only.end(), std::string(name)) != g_only.end();
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

cudaStream_t stream() { return ops::cuda::stream(); }

// Median milliseconds of one call of f over `reps` timed batches of `iters` calls each.
double time_ms(const std::function<void(int)>& f, int iters = 20, int reps = 5) {
  if (g_quick) {
    iters = std::max(1, iters / 4);
    reps = 3;
  }
  for (int i = 0; i < 3; ++i) f(i);
  check(cudaStreamSynchronize(stream()), "warm-up");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    check(cudaEventRecord(a, stream()), "record");
    for (int i = 0; i < iters; ++i) f(i);
    check(cudaEventRecord(b, stream()), "record");
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    t.push_back(double(ms) / iters);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// GPU time of one call of f without host overhead: `iters` calls captured into one CUDA graph,
// replayed; median ms per call. Falls back to -1 when the calls cannot be captured.
double graph_ms(const std::function<void(int)>& f, int iters = 28, int reps = 7) {
  for (int i = 0; i < 2; ++i) f(i);  // warm-up: plans, scratch, kernel attributes
  check(cudaStreamSynchronize(stream()), "warm-up");
  cudaStream_t cap;
  check(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking), "stream");
  ops::cuda::set_stream(cap);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  double result = -1;
  try {
    check(cudaStreamBeginCapture(cap, cudaStreamCaptureModeThreadLocal), "begin capture");
    for (int i = 0; i < iters; ++i) f(i);
    check(cudaStreamEndCapture(cap, &graph), "end capture");
    check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    result = time_ms([&](int) { check(cudaGraphLaunch(exec, cap), "launch"); }, 3, reps) / iters;
  } catch (const Error& e) {
    std::printf("  (capture failed: %s)\n", e.what());
    cudaStreamEndCapture(cap, &graph);
    cudaGetLastError();
  }
  if (exec) cudaGraphExecDestroy(exec);
  if (graph) cudaGraphDestroy(graph);
  ops::cuda::set_stream(nullptr);
  check(cudaStreamSynchronize(cap), "sync");
  cudaStreamDestroy(cap);
  return result;
}

Tensor random_cpu(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor random_gpu(const Shape& shape, DType dtype, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor f = random_cpu(shape, seed, lo, hi).to(Device::CUDA);
  if (dtype == DType::F32) return f;
  Tensor out = Tensor::empty(shape, dtype, Device::CUDA);
  ops::convert(f, out);
  return out;
}

// Model dimensions.
struct Dims {
  const char* name;
  int64_t D, H, K, hd, F, layers;
};
constexpr Dims kPerception{"perception 0.6B", 1024, 16, 8, 128, 3072, 28};
constexpr Dims kOcr{"ocr 0.3B", 768, 16, 8, 64, 2304, 22};
constexpr int64_t kVocab = 65536;
constexpr int64_t kPrompt = 3095, kImageBegin = 0, kImageEnd = 3077;  // cls, 4 registers, 64 x 48 patches

// Visible (query, key) pairs of a prefill under the hybrid mask.
double visible_pairs(int64_t S, int64_t q_offset, int64_t ib, int64_t ie) {
  double n = 0;
  for (int64_t i = 0; i < S; ++i) {
    const int64_t p = q_offset + i;
    const int64_t last = (ie > ib && p >= ib && p < ie) ? std::max(p, ie - 1) : p;
    n += double(last + 1);
  }
  return n;
}

void bench_prefill_attention() {
  std::printf("\n== prefill attention, BF16, S=%lld, image [%lld, %lld) ==\n", (long long)kPrompt,
              (long long)kImageBegin, (long long)kImageEnd);
  std::printf("%-36s %10s %12s\n", "shape / variant (H=16, K=8)", "ms", "TFLOP/s");
  for (const Dims& d : {kPerception, kOcr}) {
    const int64_t S = kPrompt;
    Tensor q = random_gpu({S, d.H, d.hd}, DType::BF16, 1, -2, 2), k = random_gpu({S, d.H, d.hd}, DType::BF16, 2, -2, 2);
    Tensor v = random_gpu({S, d.K, d.hd}, DType::BF16, 3), sinks = random_gpu({d.H}, DType::F32, 4);
    Tensor out = Tensor::empty({S, d.H, d.hd}, DType::BF16, Device::CUDA);
    const ops::AttentionMask mask{0, kImageBegin, kImageEnd};
    const double flop = 4.0 * visible_pairs(S, 0, kImageBegin, kImageEnd) * double(d.H * d.hd);
    const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
    struct Variant {
      bool wgmma, lean;
      int groups, rows, bn, warps;
    };
    const Variant variants[] = {{true, false, 1, 16, 64, 4},  {true, true, 1, 16, 64, 4},
                                {true, false, 2, 16, 64, 4},  {false, false, 0, 16, 64, 4},
                                {false, false, 0, 16, 64, 8}, {false, false, 0, 32, 32, 4},
                                {false, false, 0, 32, 64, 4}};
    for (const Variant& var : variants) {
      if (var.wgmma && d.hd != 128) continue;  // wgmma serves head_dim 128 only
      ops::cuda::AttentionTuning t = saved;
      t.flash_wgmma = var.wgmma;
      t.flash_wgmma_lean = var.lean;
      t.flash_warpgroups = var.groups;
      t.flash_rows_per_warp = var.rows;
      t.flash_block_n = var.bn;
      t.flash_warps = var.warps;
      ops::cuda::set_attention_tuning(t);
      const double ms = time_ms([&](int) { ops::attention(q, k, v, sinks, mask, out); });
      char label[64];
      if (var.wgmma) {
        std::snprintf(label, sizeof label, "hd=%lld: wgmma, %d warpgroup(s)%s", (long long)d.hd, var.groups,
                      var.lean ? ", lean" : "");
      } else {
        std::snprintf(label, sizeof label, "hd=%lld: mma, %d rows/warp, BN=%d, %dw", (long long)d.hd, var.rows,
                      var.bn, var.warps);
      }
      std::printf("%-36s %10.3f %12.1f\n", label, ms, flop / ms / 1e9);
    }
    ops::cuda::set_attention_tuning(saved);
    // The same prompt without the image block: causal only (half the pairs).
    const ops::AttentionMask causal{0, 0, 0};
    const double ms = time_ms([&](int) { ops::attention(q, k, v, sinks, causal, out); });
    std::printf("%-36s %10.3f %12.1f\n", (std::string("  default, causal only, hd=") + std::to_string(d.hd)).c_str(), ms,
                4.0 * visible_pairs(S, 0, 0, 0) * double(d.H * d.hd) / ms / 1e9);
  }
}

struct LayerWeights {
  Tensor wqkv, wo, w13, w2;
};

std::vector<LayerWeights> make_layers(const Dims& d, DType dt, int count) {
  const Tensor wqkv = random_cpu({(d.H + 2 * d.K) * d.hd, d.D}, 11, -0.05f, 0.05f);
  const Tensor wo = random_cpu({d.D, d.H * d.hd}, 12, -0.05f, 0.05f);
  const Tensor w13 = random_cpu({2 * d.F, d.D}, 13, -0.05f, 0.05f);
  const Tensor w2 = random_cpu({d.D, d.F}, 14, -0.05f, 0.05f);
  std::vector<LayerWeights> layers;
  for (int i = 0; i < count; ++i) {
    layers.push_back({ops::prepare_linear_weight(wqkv, dt, Device::CUDA), ops::prepare_linear_weight(wo, dt, Device::CUDA),
                      ops::prepare_linear_weight(w13, dt, Device::CUDA), ops::prepare_linear_weight(w2, dt, Device::CUDA)});
  }
  return layers;
}

void bench_linear(const std::vector<LayerWeights>& layers, const Tensor& out_w, const Dims& d, const char* wname) {
  struct Shape_ {
    const char* name;
    int64_t n, k;
    Tensor LayerWeights::*w;
  };
  const Shape_ shapes[] = {{"wqkv", (d.H + 2 * d.K) * d.hd, d.D, &LayerWeights::wqkv},
                           {"wo", d.D, d.H * d.hd, &LayerWeights::wo},
                           {"w13", 2 * d.F, d.D, &LayerWeights::w13},
                           {"w2", d.D, d.F, &LayerWeights::w2}};
  const int nl = int(layers.size());
  const DType wdt = layers[0].wqkv.dtype();
  std::printf("\n== linear, BF16 activations, %s weights (%s); GB/s and TFLOP/s from the graph time ==\n", wname, d.name);
  std::printf("%-8s %-9s %6s %6s %6s %10s %10s %10s %10s\n", "weight", "path", "M", "N", "K", "stream us", "graph us",
              "TFLOP/s", "GB/s");
  const ops::cuda::LinearTuning saved = ops::cuda::linear_tuning();
  const bool quantized = wdt != DType::BF16;
  const std::vector<int64_t> rows = quantized ? std::vector<int64_t>{1, 8, 12, 16, 32, 64, 128, kPrompt}
                                              : std::vector<int64_t>{1, 2, 8, 64, kPrompt};
  for (const int64_t M : rows) {
    const int64_t width = std::max(d.F, d.H * d.hd);
    Tensor x = random_gpu({M, width}, DType::BF16, 21);
    // BF16 at M <= 8 runs both the GEMV and cuBLASLt, to show why the GEMV is the default;
    // quantised weights above 8 rows both the dequantising GEMM and cuBLASLt on expanded weights,
    // for LinearTuning::expand_min_rows.
    const int variants = ((wdt == DType::BF16 && M <= 8) || (quantized && M > 8)) ? 2 : 1;
    for (int var = 0; var < variants; ++var) {
      ops::cuda::LinearTuning t = saved;
      t.gemv_max_rows = var == 0 && variants == 2 && !quantized ? 8 : 0;  // 8: the GEMV takes it
      t.expand_min_rows = quantized && var == 1 ? 1 : 0;
      ops::cuda::set_linear_tuning(t);
      const char* path = quantized ? (t.expand_min_rows ? "expand" : "dequant")
                         : t.gemv_max_rows >= M ? "gemv"
                                                : "cublasLt";
      for (const Shape_& s : shapes) {
        Tensor xs = x.reshape({M * width}).rows(0, M * s.k).reshape({M, s.k});
        Tensor y = Tensor::empty({M, s.n}, DType::BF16, Device::CUDA);
        const auto call = [&](int i) { ops::linear(xs, layers[size_t(i % nl)].*(s.w), nullptr, y, false); };
        const double ms = time_ms(call, 28);
        const double gms = M <= 64 ? graph_ms(call, nl) : ms;
        const double flop = 2.0 * double(M) * double(s.n) * double(s.k);
        const double bytes = double(s.n) * double(row_bytes(wdt, s.k)) + double(M) * double(s.k + s.n) * 2.0;
        std::printf("%-8s %-9s %6lld %6lld %6lld %10.1f %10.1f %10.1f %10.0f\n", s.name, path, (long long)M,
                    (long long)s.n, (long long)s.k, ms * 1e3, gms * 1e3, flop / gms / 1e9, bytes / gms / 1e6);
      }
      if (M <= 64) {
        Tensor xo = x.reshape({M * width}).rows(0, M * d.D).reshape({M, d.D});
        Tensor y = Tensor::empty({M, kVocab}, DType::BF16, Device::CUDA);
        const auto call = [&](int) { ops::linear(xo, out_w, nullptr, y, false); };
        const double ms = time_ms(call);
        const double gms = graph_ms(call, 4);
        const double bytes = double(kVocab) * double(row_bytes(out_w.dtype(), d.D));
        std::printf("%-8s %-9s %6lld %6lld %6lld %10.1f %10.1f %10.1f %10.0f\n", "output", path, (long long)M,
                    (long long)kVocab, (long long)d.D, ms * 1e3, gms * 1e3, 2.0 * double(M * kVocab * d.D) / gms / 1e9,
                    bytes / gms / 1e6);
      }
    }
  }
  ops::cuda::set_linear_tuning(saved);
}

// Decode attention cases: one query row over T cached keys, contiguous (caches rotating over 8
// copies so the 20 MB per call are not L2 hits) or paged (B sequences of T keys each, block size
// 16, blocks shuffled over the pool). `call` runs it once; `bytes` is what it must read.
struct DecodeCase {
  std::string label;
  std::function<void(int)> call;
  double bytes;
  int copies;
};

std::vector<DecodeCase> decode_cases(std::vector<Tensor>& keep) {
  std::vector<DecodeCase> cases;
  const int64_t H = 16, K = 8;
  for (const int64_t hd : {int64_t(128), int64_t(64)}) {
    const int64_t T = 3200;
    const int copies = 8;
    const size_t first = keep.size();
    for (int i = 0; i < copies; ++i) {
      keep.push_back(random_gpu({T, H, hd}, DType::BF16, 30 + uint64_t(i), -2, 2));
      keep.push_back(random_gpu({T, K, hd}, DType::BF16, 40 + uint64_t(i)));
    }
    keep.push_back(random_gpu({1, H, hd}, DType::BF16, 31, -2, 2));
    keep.push_back(random_gpu({H}, DType::F32, 32));
    keep.push_back(Tensor::empty({1, H, hd}, DType::BF16, Device::CUDA));
    const Tensor* t = &keep[first];
    const ops::AttentionMask mask{T - 1, 0, 0};
    char label[64];
    std::snprintf(label, sizeof label, "contiguous T=3200 hd=%lld", (long long)hd);
    // `keep` is reserved by the caller and never reallocates, so the pointers stay valid.
    cases.push_back({label,
                     [t, mask, copies](int i) {
                       const size_t c = size_t(i % copies);
                       Tensor out = t[2 * copies + 2];
                       ops::attention(t[2 * copies], t[2 * c], t[2 * c + 1], t[2 * copies + 1], mask, out);
                     },
                     double(T) * double(H + K) * double(hd) * 2.0, copies});
  }
  for (const int64_t hd : {int64_t(128), int64_t(64)}) {
    for (const auto& bt : {std::pair<int64_t, int64_t>{1, 3200}, {64, 1300}}) {
      const int64_t B = bt.first, T = bt.second;
      const int64_t bs = 16, per = (T + bs - 1) / bs, blocks = B * per;
      const size_t first = keep.size();
      keep.push_back(random_gpu({blocks, bs, H, hd}, DType::BF16, 50, -2, 2));
      keep.push_back(random_gpu({blocks, bs, K, hd}, DType::BF16, 51));
      Tensor table = Tensor::empty({B, per}, DType::I32), lens = Tensor::empty({B}, DType::I32);
      std::vector<int32_t> order(static_cast<size_t>(blocks));
      for (int64_t i = 0; i < blocks; ++i) order[size_t(i)] = int32_t(i);
      std::shuffle(order.begin(), order.end(), std::mt19937(7));
      for (int64_t i = 0; i < blocks; ++i) table.data<int32_t>()[i] = order[size_t(i)];
      for (int64_t b = 0; b < B; ++b) lens.data<int32_t>()[b] = int32_t(T);
      keep.push_back(random_gpu({B, H, hd}, DType::BF16, 52, -2, 2));
      keep.push_back(random_gpu({H}, DType::F32, 53));
      keep.push_back(Tensor::empty({B, H, hd}, DType::BF16, Device::CUDA));
      keep.push_back(table.to(Device::CUDA));
      keep.push_back(lens.to(Device::CUDA));
      const Tensor* t = &keep[first];
      char label[64];
      std::snprintf(label, sizeof label, "paged B=%lld T=%lld hd=%lld", (long long)B, (long long)T, (long long)hd);
      cases.push_back({label,
                       [t](int) {
                         Tensor out = t[4];
                         ops::paged_attention(t[2], t[0], t[1], t[5], t[6], t[3], out);
                       },
                       double(B) * double(T) * double(H + K) * double(hd) * 2.0, 1});
    }
  }
  return cases;
}

// The general split kernel (what decode used before) against the decode kernel, defaults.
void bench_decode_attention() {
  std::printf("\n== decode attention, BF16, one query row per sequence (H=16, K=8) ==\n");
  std::printf("%-30s %-14s %10s %10s %10s\n", "case", "kernel", "stream us", "graph us", "GB/s");
  std::vector<Tensor> keep;
  keep.reserve(256);
  const std::vector<DecodeCase> cases = decode_cases(keep);
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  for (const DecodeCase& c : cases) {
    for (const bool decode : {false, true}) {
      ops::cuda::AttentionTuning t = saved;
      t.decode_kernel = decode;
      ops::cuda::set_attention_tuning(t);
      const double ms = time_ms(c.call, 40), gms = graph_ms(c.call, std::max(8, c.copies * 4));
      std::printf("%-30s %-14s %10.1f %10.1f %10.0f\n", c.label.c_str(), decode ? "decode" : "split (old)", ms * 1e3,
                  gms * 1e3, c.bytes / gms / 1e6);
    }
  }
  ops::cuda::set_attention_tuning(saved);
}

// decode-sweep: graph time of the decode kernel over its tuning (head pairs or single heads,
// warps, ring stages, blocks per multiprocessor the split count aims at (0 = the default),
// cluster merge size (0 = global merge)), the best per case, and the best again as a
// programmatic dependent launch.
struct DecodeConfig {
  int warps, stages, per_sm, cluster;
  bool pdl;
  bool pairs = true;
};

ops::cuda::AttentionTuning with_config(ops::cuda::AttentionTuning t, const DecodeConfig& c) {
  t.decode_warps = c.warps;
  t.decode_stages = c.stages;
  t.decode_blocks_per_sm = c.per_sm;
  t.decode_cluster = c.cluster;
  t.decode_pdl = c.pdl;
  t.decode_pairs = c.pairs;
  return t;
}

void bench_decode_sweep() {
  std::printf("\n== decode attention sweep (graph us) ==\n");
  std::vector<Tensor> keep;
  keep.reserve(256);
  const std::vector<DecodeCase> cases = decode_cases(keep);
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  for (const DecodeCase& c : cases) {
    double best = 1e30;
    DecodeConfig best_cfg{};
    for (const bool pairs : {true, false}) {
      for (const int warps : {4, 8}) {
        for (const int stages : {2, 4}) {
          for (const int per_sm : {0, 1, 2, 4}) {
            for (const int cluster : {0, 8, 16}) {
              const DecodeConfig cfg{warps, stages, per_sm, cluster, false, pairs};
              ops::cuda::set_attention_tuning(with_config(saved, cfg));
              const double gms = graph_ms(c.call, std::max(8, c.copies * 4), 5);
              std::printf("sweep %-28s pairs %d warps %d stages %d per_sm %d cluster %2d: %8.1f us %6.0f GB/s\n",
                          c.label.c_str(), int(pairs), warps, stages, per_sm, cluster, gms * 1e3, c.bytes / gms / 1e6);
              if (gms > 0 && gms < best) {
                best = gms;
                best_cfg = cfg;
              }
            }
          }
        }
      }
    }
    std::printf("BEST %-28s pairs %d warps %d stages %d per_sm %d cluster %2d: %.1f us %.0f GB/s\n", c.label.c_str(),
                int(best_cfg.pairs), best_cfg.warps, best_cfg.stages, best_cfg.per_sm, best_cfg.cluster, best * 1e3,
                c.bytes / best / 1e6);
    best_cfg.pdl = true;
    ops::cuda::set_attention_tuning(with_config(saved, best_cfg));
    const double gms = graph_ms(c.call, std::max(8, c.copies * 4), 5);
    std::printf("BEST+PDL %-24s %.1f us %.0f GB/s\n", c.label.c_str(), gms * 1e3, c.bytes / gms / 1e6);
  }
  ops::cuda::set_attention_tuning(saved);
}

// decode-series: one row, contiguous keys, graph time against T (the intercept is the fixed
// cost of a call: launch, first loads, merge), for a few settings.
void bench_decode_series() {
  std::printf("\n== decode attention against T (graph us, contiguous, H=16, K=8) ==\n");
  const ops::cuda::AttentionTuning saved = ops::cuda::attention_tuning();
  const DecodeConfig configs[] = {{8, 2, 1, 16, false}, {8, 2, 1, 0, false}, {8, 2, 1, 16, true},
                                  {4, 4, 0, 0, false},  {8, 2, 1, 8, false, false}};
  for (const int64_t hd : {int64_t(128), int64_t(64)}) {
    for (const int64_t T : {int64_t(3200), int64_t(64), int64_t(400), int64_t(1600), int64_t(6400)}) {
      const int64_t H = 16, K = 8;
      const int copies = 8;
      std::vector<Tensor> ks, vs;
      for (int i = 0; i < copies; ++i) {
        ks.push_back(random_gpu({T, H, hd}, DType::BF16, 30 + uint64_t(i), -2, 2));
        vs.push_back(random_gpu({T, K, hd}, DType::BF16, 40 + uint64_t(i)));
      }
      Tensor q = random_gpu({1, H, hd}, DType::BF16, 31, -2, 2), sinks = random_gpu({H}, DType::F32, 32);
      Tensor out = Tensor::empty({1, H, hd}, DType::BF16, Device::CUDA);
      const ops::AttentionMask mask{T - 1, 0, 0};
      const auto call = [&](int i) {
        ops::attention(q, ks[size_t(i % copies)], vs[size_t(i % copies)], sinks, mask, out);
      };
      std::printf("series hd=%-4lld T=%-5lld", (long long)hd, (long long)T);
      for (const DecodeConfig& cfg : configs) {
        ops::cuda::set_attention_tuning(with_config(saved, cfg));
        std::printf("  w%d s%d p%d c%d%s%s %6.1f", cfg.warps, cfg.stages, cfg.per_sm, cfg.cluster,
                    cfg.pdl ? "+pdl" : "", cfg.pairs ? "" : " single", graph_ms(call, copies * 4, 5) * 1e3);
      }
      std::printf("\n");
    }
  }
  ops::cuda::set_attention_tuning(saved);
}

void bench_small_ops() {
  const Dims d = kPerception;
  const int64_t S = kPrompt;
  std::printf("\n== small ops, BF16 (S=%lld, 0.6B dims) ==\n", (long long)S);
  std::printf("%-34s %10s %10s %10s\n", "op", "stream us", "graph us", "GB/s");
  Tensor x = random_gpu({S, d.D}, DType::BF16, 60), y = Tensor::empty({S, d.D}, DType::BF16, Device::CUDA);
  Tensor nw = random_gpu({d.D}, DType::F32, 61);
  auto row = [](const char* name, const std::function<void(int)>& f, double bytes) {
    const double ms = time_ms(f), gms = graph_ms(f, 10);
    std::printf("%-34s %10.1f %10.1f %10.0f\n", name, ms * 1e3, gms * 1e3, bytes / gms / 1e6);
  };
  row("rms_norm [3095,1024]", [&](int) { ops::rms_norm(x, &nw, 1e-5f, y); }, 4.0 * double(S * d.D));
  Tensor x1 = x.rows(0, 1), y1 = y.rows(0, 1);
  row("rms_norm [1,1024]", [&](int) { ops::rms_norm(x1, &nw, 1e-5f, y1); }, 4.0 * double(d.D));
  row("add [3095,1024]", [&](int) { ops::add(x, y, y); }, 6.0 * double(S * d.D));
  Tensor qkv = random_gpu({S, (d.H + 2 * d.K) * d.hd}, DType::BF16, 62, -2, 2);
  Tensor pos_t = Tensor::zeros({S}, DType::I32, Device::CUDA), pos_hw = random_gpu({S, 2}, DType::F32, 63);
  Tensor golden = random_gpu({d.H, d.hd / 4, 2}, DType::F32, 64);
  Tensor q = Tensor::empty({S, d.H, d.hd}, DType::BF16, Device::CUDA), k = Tensor::empty({S, d.H, d.hd}, DType::BF16, Device::CUDA);
  Tensor v = Tensor::empty({S, d.K, d.hd}, DType::BF16, Device::CUDA);
  row("qk_norm_rope S=3095", [&](int) { ops::qk_norm_rope(qkv, pos_t, pos_hw, golden, 10000.f, 1.1920929e-7f, q, k, v); },
      2.0 * double(S) * double((d.H + 2 * d.K) * d.hd + (2 * d.H + d.K) * d.hd));
  {
    Tensor qkv1 = qkv.rows(0, 1), pt1 = pos_t.rows(0, 1), phw1 = pos_hw.rows(0, 1), q1 = q.rows(0, 1), k1 = k.rows(0, 1),
           v1 = v.rows(0, 1);
    row("qk_norm_rope S=1", [&](int) { ops::qk_norm_rope(qkv1, pt1, phw1, golden, 10000.f, 1.1920929e-7f, q1, k1, v1); },
        2.0 * double((d.H + 2 * d.K) * d.hd + (2 * d.H + d.K) * d.hd));
  }
  Tensor a = random_gpu({S, 2 * d.F}, DType::BF16, 65), g = Tensor::empty({S, d.F}, DType::BF16, Device::CUDA);
  row("squared_relu_gate [3095,6144]", [&](int) { ops::squared_relu_gate(a, g); }, 2.0 * double(S * 3 * d.F));
  Tensor logits = random_gpu({1, kVocab}, DType::BF16, 66), idx = Tensor::empty({1}, DType::I32, Device::CUDA);
  row("argmax [1,65536]", [&](int) { ops::argmax(logits, idx); }, 2.0 * double(kVocab));
  Tensor table = random_gpu({kVocab, d.D}, DType::BF16, 67), ids = Tensor::zeros({S}, DType::I32, Device::CUDA);
  {
    const double ms = time_ms([&](int) { ops::embedding(table, ids, y); }, 5);
    std::printf("%-34s %10.1f %10s %10s   (host check of the ids included)\n", "embedding S=3095", ms * 1e3, "-", "-");
  }
}

// The transformer stack at real dimensions: what prefill and one decode step cost in kernels.
struct Stack {
  Dims d;
  std::vector<LayerWeights> layers;
  Tensor out_w, final_norm, sinks, golden;
};

// All layers, the output layer and the small tensors of a model of dims d, random.
Stack make_stack(const Dims& d, DType wdt) {
  return Stack{d, make_layers(d, wdt, int(d.layers)),
               ops::prepare_linear_weight(random_cpu({kVocab, d.D}, 70, -0.05f, 0.05f), wdt, Device::CUDA),
               random_gpu({d.D}, DType::F32, 71, 0.5f, 1.5f), random_gpu({d.H}, DType::F32, 72),
               random_gpu({d.H, d.hd / 4, 2}, DType::F32, 73)};
}

void run_prefill(Stack& st, Tensor& x, Tensor& n, Tensor& qkv, Tensor& q, Tensor& k, Tensor& v, Tensor& o, Tensor& a,
                 Tensor& g, Tensor& pos_t, Tensor& pos_hw, Tensor& logits) {
  const Dims& d = st.d;
  const int64_t S = x.dim(0);
  const ops::AttentionMask mask{0, kImageBegin, kImageEnd};
  for (const LayerWeights& L : st.layers) {
    ops::rms_norm(x, nullptr, 1.1920929e-7f, n);                                   // (S, D)
    ops::linear(n, L.wqkv, nullptr, qkv, false);                                   // (S, (H+2K) hd)
    ops::qk_norm_rope(qkv, pos_t, pos_hw, st.golden, 10000.f, 1.1920929e-7f, q, k, v);
    Tensor o3 = o.reshape({S, d.H, d.hd});
    ops::attention(q, k, v, st.sinks, mask, o3);                                   // (S, H, hd)
    ops::linear(o, L.wo, nullptr, x, true);                                        // x += wo o
    ops::rms_norm(x, nullptr, 1.1920929e-7f, n);
    ops::linear(n, L.w13, nullptr, a, false);                                      // (S, 2F)
    ops::squared_relu_gate(a, g);                                                  // (S, F)
    ops::linear(g, L.w2, nullptr, x, true);                                        // x += w2 g
  }
  Tensor last = x.rows(S - 1, S), nlast = n.rows(S - 1, S);
  ops::rms_norm(last, &st.final_norm, 1e-5f, nlast);
  ops::linear(nlast, st.out_w, nullptr, logits, false);                            // (1, V)
}

void bench_stack(const Dims& d, DType wdt, const char* wname) {
  std::printf("\n== %s, %s weights: whole transformer stack ==\n", d.name, wname);
  Stack st = make_stack(d, wdt);
  const int64_t S = kPrompt;
  {
    Tensor x0 = random_gpu({S, d.D}, DType::BF16, 74), x = Tensor::empty({S, d.D}, DType::BF16, Device::CUDA);
    Tensor n = Tensor::empty({S, d.D}, DType::BF16, Device::CUDA);
    Tensor qkv = Tensor::empty({S, (d.H + 2 * d.K) * d.hd}, DType::BF16, Device::CUDA);
    Tensor q = Tensor::empty({S, d.H, d.hd}, DType::BF16, Device::CUDA), k = Tensor::empty({S, d.H, d.hd}, DType::BF16, Device::CUDA);
    Tensor v = Tensor::empty({S, d.K, d.hd}, DType::BF16, Device::CUDA);
    Tensor o = Tensor::empty({S, d.H * d.hd}, DType::BF16, Device::CUDA);
    Tensor a = Tensor::empty({S, 2 * d.F}, DType::BF16, Device::CUDA), g = Tensor::empty({S, d.F}, DType::BF16, Device::CUDA);
    Tensor pos_t = Tensor::zeros({S}, DType::I32, Device::CUDA), pos_hw = random_gpu({S, 2}, DType::F32, 75);
    Tensor logits = Tensor::empty({1, kVocab}, DType::BF16, Device::CUDA);
    if (wdt == DType::BF16) {
      const double ms = time_ms([&](int) {
        check(cudaMemcpyAsync(x.raw(), x0.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, stream()), "copy");
        run_prefill(st, x, n, qkv, q, k, v, o, a, g, pos_t, pos_hw, logits);
      }, 3, 5);
      std::printf("prefill S=%lld, %lld layers: %.2f ms   (PERF.md: reference 48 ms, target <= 15 ms)\n", (long long)S,
                  (long long)d.layers, ms);
    }
  }
  // Decode: one token over T = 3,200 cached keys per layer (each layer its own cache).
  const int64_t T = 3200;
  std::vector<Tensor> kc, vc;
  for (int64_t l = 0; l < d.layers; ++l) {
    kc.push_back(random_gpu({T, d.H, d.hd}, DType::BF16, 80 + uint64_t(l), -2, 2));
    vc.push_back(random_gpu({T, d.K, d.hd}, DType::BF16, 200 + uint64_t(l)));
  }
  Tensor x = random_gpu({1, d.D}, DType::BF16, 76), n = Tensor::empty({1, d.D}, DType::BF16, Device::CUDA);
  Tensor qkv = Tensor::empty({1, (d.H + 2 * d.K) * d.hd}, DType::BF16, Device::CUDA);
  Tensor q = Tensor::empty({1, d.H, d.hd}, DType::BF16, Device::CUDA), o = Tensor::empty({1, d.H * d.hd}, DType::BF16, Device::CUDA);
  Tensor a = Tensor::empty({1, 2 * d.F}, DType::BF16, Device::CUDA), g = Tensor::empty({1, d.F}, DType::BF16, Device::CUDA);
  Tensor pos_t = Tensor::zeros({1}, DType::I32, Device::CUDA), pos_hw = Tensor::zeros({1, 2}, DType::F32, Device::CUDA);
  Tensor logits = Tensor::empty({1, kVocab}, DType::BF16, Device::CUDA), next = Tensor::empty({1}, DType::I32, Device::CUDA);
  auto step = [&]() {
    for (int64_t l = 0; l < d.layers; ++l) {
      const LayerWeights& L = st.layers[size_t(l)];
      ops::rms_norm(x, nullptr, 1.1920929e-7f, n);
      ops::linear(n, L.wqkv, nullptr, qkv, false);
      Tensor krow = kc[size_t(l)].rows(T - 1, T), vrow = vc[size_t(l)].rows(T - 1, T);
      ops::qk_norm_rope(qkv, pos_t, pos_hw, st.golden, 10000.f, 1.1920929e-7f, q, krow, vrow);
      Tensor o3 = o.reshape({1, d.H, d.hd});
      ops::attention(q, kc[size_t(l)], vc[size_t(l)], st.sinks, ops::AttentionMask{T - 1, 0, 0}, o3);
      ops::linear(o, L.wo, nullptr, x, true);
      ops::rms_norm(x, nullptr, 1.1920929e-7f, n);
      ops::linear(n, L.w13, nullptr, a, false);
      ops::squared_relu_gate(a, g);
      ops::linear(g, L.w2, nullptr, x, true);
    }
    ops::rms_norm(x, &st.final_norm, 1e-5f, n);
    ops::linear(n, st.out_w, nullptr, logits, false);
    ops::argmax(logits, next);
  };
  const double ms = time_ms([&](int) { step(); }, 10, 5);
  double wbytes = double(st.out_w.nbytes());
  for (const LayerWeights& L : st.layers) wbytes += double(L.wqkv.nbytes() + L.wo.nbytes() + L.w13.nbytes() + L.w2.nbytes());
  const double kvbytes = double(d.layers) * double(T) * double(d.H + d.K) * double(d.hd) * 2.0;
  std::printf("decode step T=%lld (stream):  %.3f ms   weights %.0f MB + KV %.0f MB -> %.0f GB/s"
              "   (PERF.md: reference 1.29 ms, target <= 0.50 ms)\n",
              (long long)T, ms, wbytes / 1e6, kvbytes / 1e6, (wbytes + kvbytes) / ms / 1e6);

  // The same step captured once into a CUDA graph: proves the ops capture (no allocation or
  // synchronisation inside) and shows what launch overhead costs.
  cudaStream_t cap;
  check(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking), "stream");
  check(cudaStreamSynchronize(stream()), "sync");
  ops::cuda::set_stream(cap);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool ok = true;
  try {
    check(cudaStreamBeginCapture(cap, cudaStreamCaptureModeThreadLocal), "begin capture");
    step();
    check(cudaStreamEndCapture(cap, &graph), "end capture");
    check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  } catch (const Error& e) {
    std::printf("decode step capture failed: %s\n", e.what());
    ok = false;
    cudaStreamEndCapture(cap, &graph);
    cudaGetLastError();
  }
  if (ok) {
    const double gms = time_ms([&](int) { check(cudaGraphLaunch(exec, cap), "launch"); }, 20, 5);
    std::printf("decode step T=%lld (CUDA graph): %.3f ms   -> %.0f GB/s\n", (long long)T, gms,
                (wbytes + kvbytes) / gms / 1e6);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  ops::cuda::set_stream(nullptr);
  check(cudaStreamSynchronize(cap), "sync");
  cudaStreamDestroy(cap);
}

// The engine's decode step as FalconPerceptionModel::run_decode_layers builds it (norm and gate
// folded into the GEMVs, q/k normalised and rotated and the step's key and value written into a
// paged pool of 16-key blocks by paged_attention_qkv, which attends over T keys), at one row,
// with random weights of dtype wdt.
struct DecodeStep {
  static constexpr int kOps = 6;
  static constexpr unsigned kAll = (1u << kOps) - 1;
  static constexpr const char* kNames[kOps] = {"wqkv + norm", "paged_attention_qkv", "wo", "w13 + norm", "w2 + gate",
                                               "final norm, logits, argmax"};
  Dims d;
  int64_t T;
  Stack st;
  std::vector<Tensor> kp, vp;
  Tensor table, lens, x, n, qkv, o, a, g, hidden, logits, next, pos_t, pos_hw;
  // The input stage as its own kernel (qk_norm_rope_paged into q and the pool at `slots`, then
  // paged_attention), as the step ran before paged_attention_qkv.
  bool separate_input_stage = false;
  Tensor slots, q;

  DecodeStep(const Dims& dims, int64_t keys, DType wdt) : d(dims), T(keys), st(make_stack(dims, wdt)) {
    const int64_t bs = 16, blocks = (T + bs - 1) / bs;
    for (int64_t l = 0; l < d.layers; ++l) {
      kp.push_back(random_gpu({blocks, bs, d.H, d.hd}, DType::BF16, 300 + uint64_t(l), -2, 2));
      vp.push_back(random_gpu({blocks, bs, d.K, d.hd}, DType::BF16, 400 + uint64_t(l)));
    }
    Tensor table_h = Tensor::empty({1, blocks}, DType::I32), lens_h = Tensor::empty({1}, DType::I32);
    Tensor slot_h = Tensor::empty({1}, DType::I32);
    for (int64_t b = 0; b < blocks; ++b) table_h.data<int32_t>()[b] = int32_t(blocks - 1 - b);  // scattered blocks
    lens_h.data<int32_t>()[0] = int32_t(T);
    slot_h.data<int32_t>()[0] = int32_t(table_h.data<int32_t>()[(T - 1) / bs] * bs + (T - 1) % bs);
    table = table_h.to(Device::CUDA);
    lens = lens_h.to(Device::CUDA);
    slots = slot_h.to(Device::CUDA);
    const auto act = [](const Shape& sh) { return Tensor::zeros(sh, DType::BF16, Device::CUDA); };
    x = random_gpu({1, d.D}, DType::BF16, 76);
    n = act({1, d.D});
    qkv = act({1, (d.H + 2 * d.K) * d.hd});
    o = act({1, d.H, d.hd});
    q = act({1, d.H, d.hd});
    a = act({1, 2 * d.F});
    g = act({1, d.F});
    hidden = act({1, d.D});
    logits = act({1, kVocab});
    next = Tensor::zeros({1}, DType::I32, Device::CUDA);
    pos_t = Tensor::zeros({1}, DType::I32, Device::CUDA);
    pos_hw = Tensor::zeros({1, 2}, DType::F32, Device::CUDA);
  }

  void run(unsigned ops_on) {
    const float eps = 1.1920929e-7f;
    const ops::LinearPrologue norm{ops::LinearPrologue::Kind::RmsNorm, eps, &n};
    const ops::LinearPrologue gate{ops::LinearPrologue::Kind::SquaredReluGate, 0.f, &g};
    // All of the layers: the decode_layers op, as the engine runs it (one persistent kernel where
    // it takes the shape and DecodeLayersTuning::persistent is on).
    if ((ops_on & 31) == 31 && !separate_input_stage) {
      std::vector<ops::DecodeLayer> layers;
      for (int64_t l = 0; l < d.layers; ++l) {
        const LayerWeights& L = st.layers[size_t(l)];
        layers.push_back({&L.wqkv, &L.wo, &L.w13, &L.w2, &st.sinks, &kp[size_t(l)], &vp[size_t(l)]});
      }
      ops::decode_layers(x, layers, pos_t, pos_hw, st.golden, 10000.f, eps, table, lens, {&n, &qkv, &o, &a, &g});
      ops_on &= ~31u;
    }
    for (int64_t l = 0; l < d.layers && (ops_on & 31); ++l) {
      const LayerWeights& L = st.layers[size_t(l)];
      if (ops_on & 1) ops::linear(x, L.wqkv, nullptr, qkv, false, norm);
      if ((ops_on & 2) && separate_input_stage) {
        ops::qk_norm_rope_paged(qkv, pos_t, pos_hw, st.golden, 10000.f, eps, q, slots, kp[size_t(l)], vp[size_t(l)]);
        ops::paged_attention(q, kp[size_t(l)], vp[size_t(l)], table, lens, st.sinks, o);
      } else if (ops_on & 2) {
        ops::paged_attention_qkv(qkv, pos_t, pos_hw, st.golden, 10000.f, eps, kp[size_t(l)], vp[size_t(l)], table,
                                 lens, st.sinks, o);
      }
      if (ops_on & 4) ops::linear(o.reshape({1, d.H * d.hd}), L.wo, nullptr, x, true);
      if ((ops_on & 24) == 24) {
        ops::feed_forward(x, L.w13, L.w2, eps, {&n, &a, &g});  // one kernel where it takes the shape
      } else {
        if (ops_on & 8) ops::linear(x, L.w13, nullptr, a, false, norm);
        if (ops_on & 16) ops::linear(a, L.w2, nullptr, x, true, gate);
      }
    }
    if (ops_on & 32) {
      ops::rms_norm(x, &st.final_norm, 1e-5f, hidden);
      ops::linear(hidden, st.out_w, nullptr, logits, false);
      ops::argmax(logits, next);
    }
  }

  double bytes() const {
    double w = double(st.out_w.nbytes());
    for (const LayerWeights& L : st.layers) w += double(L.wqkv.nbytes() + L.wo.nbytes() + L.w13.nbytes() + L.w2.nbytes());
    return w + double(d.layers) * double(T) * double(d.H + d.K) * double(d.hd) * 2.0;
  }
  double step_ms() { return graph_ms([&](int) { run(kAll); }, 1, 9); }
};

// The kernels of one replay of the whole step's graph (CUPTI, bench/kernel_timeline.h): a middle
// layer kernel by kernel, then per position in the layer the mean over layers of what each
// kernel adds to the step (its end minus the previous kernel's end) and how long before that
// end it had started (its blocks waiting at the dependent-launch barrier).
void print_timeline(DecodeStep& ds) {
  if (!bench::KernelTimeline::available()) {
    std::printf("(no kernel timeline: this build has no CUPTI)\n");
    return;
  }
  cudaStream_t cap;
  check(cudaStreamCreateWithFlags(&cap, cudaStreamNonBlocking), "stream");
  ds.run(DecodeStep::kAll);
  check(cudaStreamSynchronize(stream()), "warm-up");
  ops::cuda::set_stream(cap);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  check(cudaStreamBeginCapture(cap, cudaStreamCaptureModeThreadLocal), "begin capture");
  ds.run(DecodeStep::kAll);
  check(cudaStreamEndCapture(cap, &graph), "end capture");
  check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  for (int i = 0; i < 3; ++i) check(cudaGraphLaunch(exec, cap), "launch");
  check(cudaStreamSynchronize(cap), "sync");
  bench::KernelTimeline tl;
  tl.start();
  check(cudaGraphLaunch(exec, cap), "launch");
  check(cudaStreamSynchronize(cap), "sync");
  const std::vector<bench::KernelSpan> k = tl.stop();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  ops::cuda::set_stream(nullptr);
  cudaStreamDestroy(cap);
  const size_t layers = size_t(ds.d.layers), head = 3;
  if (k.size() < head || (k.size() - head) % layers != 0 || k.size() - head < layers) {
    // Not a kernel per op and layer (the persistent kernel): each kernel's span.
    std::printf("timeline (CUPTI, one replay): %zu kernels\n", k.size());
    for (const bench::KernelSpan& s : k) {
      std::printf("  %-40s %8.2f us (starts %.2f us after the first)\n", s.name.substr(0, 40).c_str(),
                  double(s.end_ns - s.start_ns) / 1e3, double(s.start_ns - k.front().start_ns) / 1e3);
    }
    return;
  }
  const size_t per = (k.size() - head) / layers;
  const uint64_t t0 = k.front().start_ns;
  uint64_t last_end = t0;
  std::printf("timeline (CUPTI, one replay): %zu kernels, %.1f us first start to last end\n", k.size(),
              double(k.back().end_ns - t0) / 1e3);
  std::vector<double> adds(per + head, 0.0), early(per + head, 0.0);
  std::vector<uint64_t> ends(k.size());
  for (size_t i = 0; i < k.size(); ++i) {
    ends[i] = std::max(last_end, k[i].end_ns);
    const size_t pos = i < layers * per ? i % per : per + (i - layers * per);
    const double w = i < layers * per ? 1.0 / double(layers) : 1.0;
    adds[pos] += w * double(ends[i] - last_end) / 1e3;
    early[pos] += w * (last_end > k[i].start_ns ? double(last_end - k[i].start_ns) / 1e3 : 0.0);
    last_end = ends[i];
  }
  std::printf("%-26s %-14s %10s %10s\n", "kernel", "grid", "adds us", "early us");
  for (size_t pos = 0; pos < per + head; ++pos) {
    const bench::KernelSpan& s = k[pos < per ? pos : layers * per + (pos - per)];
    char grid[32];
    std::snprintf(grid, sizeof(grid), "%dx%dx%d", s.grid_x, s.grid_y, s.grid_z);
    std::printf("%-26s %-14s %10.2f %10.2f\n", s.name.substr(0, 26).c_str(), grid, adds[pos], early[pos]);
  }
  const size_t mid = layers / 2 * per;
  std::printf("layer %zu, us from the layer's first start: start / end\n", layers / 2);
  for (size_t i = mid; i < mid + per; ++i) {
    std::printf("  %-26s %8.2f %8.2f\n", k[i].name.substr(0, 26).c_str(), double(k[i].start_ns - k[mid].start_ns) / 1e3,
                double(k[i].end_ns - k[mid].start_ns) / 1e3);
  }
}

// The persistent decode kernel's phases (DecodeLayersTuning::trace): per phase kind, the mean
// over layers of the slowest block's work (its barrier leave to its next arrival), the blocks'
// mean work, the spread of the arrivals, and the release (the last arrival to the blocks' mean
// leave time).
void print_persistent_phases(DecodeStep& ds) {
  const int nb = ops::cuda::sm_count(), L = int(ds.d.layers), nbar = 5 * L - 1;
  const size_t n = size_t(2 * (nbar + 2)) * size_t(nb);
  unsigned long long* dev = nullptr;
  check(cudaMalloc(&dev, n * sizeof(unsigned long long)), "trace buffer");
  const ops::cuda::DecodeLayersTuning saved = ops::cuda::decode_layers_tuning();
  ops::cuda::DecodeLayersTuning t = saved;
  t.trace = dev;
  ops::cuda::set_decode_layers_tuning(t);
  std::vector<unsigned long long> h(n);
  double sums[5][4] = {};
  int counts[5] = {};
  for (int rep = 0; rep < 3; ++rep) {
    check(cudaMemset(dev, 0, n * sizeof(unsigned long long)), "clear");
    ds.run(DecodeStep::kAll);
    check(cudaDeviceSynchronize(), "sync");
    check(cudaMemcpy(h.data(), dev, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "trace");
    if (rep == 0) continue;  // warm-up
    const auto at = [&](int k, int leave, int b) { return double(h[size_t((2 * k + leave) * nb + b)]); };
    for (int k = 1; k <= nbar + 1; ++k) {
      const int kind = (k - 1) % 5;
      double worst = 0, mean = 0, first = 1e300, last = 0, leave = 0;
      for (int b = 0; b < nb; ++b) {
        const double w = at(k, 0, b) - at(k - 1, 1, b);
        worst = std::max(worst, w);
        mean += w / nb;
        first = std::min(first, at(k, 0, b));
        last = std::max(last, at(k, 0, b));
        if (k <= nbar) leave += at(k, 1, b) / nb;
      }
      sums[kind][0] += worst;
      sums[kind][1] += mean;
      sums[kind][2] += last - first;
      sums[kind][3] += k <= nbar ? leave - last : 0;
      counts[kind] += 1;
    }
    if (rep == 2) {
      double start = 1e300, end = 0;
      for (int b = 0; b < nb; ++b) {
        start = std::min(start, at(0, 1, b));
        end = std::max(end, at(nbar + 1, 0, b));
      }
      std::printf("persistent kernel, traced: %.1f us first block start to last block end\n", (end - start) / 1e3);
    }
  }
  ops::cuda::set_decode_layers_tuning(saved);
  cudaFree(dev);
  const char* names[5] = {"P1 qkv + norm", "P2 attention", "P3 wo", "P4 w13 + gate", "P5 w2"};
  std::printf("%-16s %12s %12s %14s %12s   (us, mean over layers)\n", "phase", "worst block", "mean block",
              "arrival spread", "release");
  for (int k = 0; k < 5; ++k) {
    const double c = std::max(1, counts[k]);
    std::printf("%-16s %12.2f %12.2f %14.2f %12.2f\n", names[k], sums[k][0] / c / 1e3, sums[k][1] / c / 1e3,
                sums[k][2] / c / 1e3, sums[k][3] / c / 1e3);
  }
}

// The one-kernel feed-forward's blocks in the step's last layer (FeedForwardTuning::trace): per
// mark, the earliest, median and latest block, us after the earliest block's start.
void print_feed_forward_trace(DecodeStep& ds) {
  const int n = 8 * 1024;
  unsigned long long* dev = nullptr;
  check(cudaMalloc(&dev, n * sizeof(unsigned long long)), "trace buffer");
  const ops::cuda::FeedForwardTuning saved = ops::cuda::feed_forward_tuning();
  ops::cuda::FeedForwardTuning t = saved;
  t.trace = dev;
  ops::cuda::set_feed_forward_tuning(t);
  std::vector<unsigned long long> h(n);
  for (int rep = 0; rep < 3; ++rep) {
    check(cudaMemset(dev, 0, n * sizeof(unsigned long long)), "clear");
    ds.run(DecodeStep::kAll);
    check(cudaDeviceSynchronize(), "sync");
  }
  check(cudaMemcpy(h.data(), dev, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost), "trace");
  ops::cuda::set_feed_forward_tuning(saved);
  cudaFree(dev);
  unsigned long long t0 = ~0ull;
  int blocks = 0;
  while (blocks < 1024 && h[size_t(8 * blocks)] != 0) t0 = std::min(t0, h[size_t(8 * blocks++)]);
  if (blocks == 0) {
    std::printf("feed-forward trace: no one-kernel feed-forward ran\n");
    return;
  }
  const char* names[6] = {"start", "past the wait", "w13 rows in", "counted in", "group summed", "x written"};
  std::printf("feed-forward kernel, last layer, %d blocks: us after the first start (first / median / last)\n",
              blocks);
  for (int k = 0; k < 6; ++k) {
    std::vector<double> v;
    for (int b = 0; b < blocks; ++b) {
      // Marks 3-5 exist only in some blocks; older ones are earlier layers' (before t0).
      if (h[size_t(8 * b + k)] >= t0) v.push_back(double(h[size_t(8 * b + k)] - t0) / 1e3);
    }
    if (v.empty()) continue;
    std::sort(v.begin(), v.end());
    std::printf("  %-16s %8.2f %8.2f %8.2f  (%zu blocks)\n", names[k], v.front(), v[v.size() / 2], v.back(), v.size());
  }
}

// The decode step as one CUDA graph; then the same graph without one op kind at a time (the
// difference: what that op costs inside the pipelined step, kernel plus whatever the dependent
// launches do not hide), and each op kind alone (28 in a row).
void bench_decode_ops(const Dims& d, int64_t T) {
  std::printf("\n== %s, BF16: the engine's decode step (graph), T = %lld ==\n", d.name, (long long)T);
  DecodeStep ds(d, T, DType::BF16);
  const double full = ds.step_ms();
  std::printf("whole step: %.3f ms   (weights + KV %.0f MB: floor %.3f ms at 3 TB/s)\n", full, ds.bytes() / 1e6,
              ds.bytes() / 3e9);
  std::printf("%-28s %16s %16s\n", "op", "step without it", "alone");
  for (int i = 0; i < DecodeStep::kOps; ++i) {
    const double without = graph_ms([&](int) { ds.run(DecodeStep::kAll & ~(1u << i)); }, 1, 9);
    const double alone = graph_ms([&](int) { ds.run(1u << i); }, 1, 9);
    const double per = i == DecodeStep::kOps - 1 ? 1.0 : double(d.layers);
    std::printf("%-28s %9.1f us/call %9.1f us/call\n", DecodeStep::kNames[i], (full - without) * 1e3 / per,
                alone * 1e3 / per);
  }
  print_timeline(ds);
}

// Whole decode steps under variants of the step's kernels (the attention's input stage folded in
// or not, its whole-split staging, its splits, the GEMVs' launch trigger), then the weight dtypes.
void bench_decode_variants(const Dims& d, int64_t T, bool quantized) {
  std::printf("\n== %s: decode step variants (graph), T = %lld ==\n", d.name, (long long)T);
  DecodeStep ds(d, T, DType::BF16);
  const ops::cuda::AttentionTuning base = ops::cuda::attention_tuning();
  const ops::cuda::LinearTuning lbase = ops::cuda::linear_tuning();
  struct Variant {
    const char* name;
    int stage_all, per_sm;
    bool early_trigger;
    int fused_input = -1;           // AttentionTuning::decode_fused_input
    bool separate_via_host = false;  // qk_norm_rope_paged with host slots, then paged_attention
    bool attention_early_trigger = true;  // AttentionTuning::decode_early_trigger
    bool persistent = false;              // DecodeLayersTuning::persistent
    int stage_at = 2;                     // DecodeLayersTuning::stage_at
    int l2_ahead = 0;                     // DecodeLayersTuning::l2_ahead
    int poll_ns = 0;                      // DecodeLayersTuning::poll_ns
    bool ffn_fused = false;               // FeedForwardTuning::fused
    int ffn_chunk = 0, ffn_group = 0;     // FeedForwardTuning::chunk, group
    bool ffn_early_trigger = true;        // FeedForwardTuning::early_trigger
  };
  const ops::cuda::DecodeLayersTuning pbase = ops::cuda::decode_layers_tuning();
  const ops::cuda::FeedForwardTuning fbase = ops::cuda::feed_forward_tuning();
  const Variant variants[] = {{"persistent kernel", -1, 0, true, -1, false, true, true},
                              {"defaults (op by op)", -1, 0, true},
                              {"feed-forward in one kernel", -1, 0, true, -1, false, true, false, 2, 0, 0, true},
                              {"feed-forward in one kernel, 16 units", -1, 0, true, -1, false, true, false, 2, 0, 0, true, 16},
                              {"feed-forward in one kernel, late trigger", -1, 0, false, -1, false, true, false, 2, 0, 0, true,
                               0, 0, false},
                              {"staging, input stage folded in", -1, 0, true, 1},
                              {"ring (no whole-split staging)", 0, 0, true},
                              {"staging, 2 blocks per SM", -1, 2, true},
                              {"staging, GEMVs trigger after their wait", -1, 0, false}};
  for (const Variant& v : variants) {
    ops::cuda::AttentionTuning t = base;
    t.decode_stage_all = v.stage_all;
    t.decode_blocks_per_sm = v.per_sm;
    t.decode_fused_input = v.fused_input;
    t.decode_early_trigger = v.attention_early_trigger;
    ds.separate_input_stage = v.separate_via_host;
    ops::cuda::set_attention_tuning(t);
    ops::cuda::LinearTuning lt = lbase;
    lt.gemv_early_trigger = v.early_trigger;
    ops::cuda::set_linear_tuning(lt);
    ops::cuda::DecodeLayersTuning pt = pbase;
    pt.persistent = v.persistent;
    pt.stage_at = v.stage_at;
    pt.l2_ahead = v.l2_ahead;
    pt.poll_ns = v.poll_ns;
    ops::cuda::set_decode_layers_tuning(pt);
    ops::cuda::FeedForwardTuning ft = fbase;
    ft.fused = v.ffn_fused;
    ft.chunk = v.ffn_chunk;
    ft.group = v.ffn_group;
    ft.early_trigger = v.ffn_early_trigger;
    ops::cuda::set_feed_forward_tuning(ft);
    std::printf("BF16 %-42s %.3f ms\n", v.name, ds.step_ms());
  }
  ops::cuda::set_feed_forward_tuning(fbase);
  ops::cuda::set_attention_tuning(base);
  ops::cuda::set_linear_tuning(lbase);
  ops::cuda::DecodeLayersTuning persistent = pbase;
  persistent.persistent = true;
  ops::cuda::set_decode_layers_tuning(persistent);
  std::printf("persistent kernel:\n");
  print_timeline(ds);
  print_persistent_phases(ds);
  ops::cuda::DecodeLayersTuning op_by_op = pbase;
  op_by_op.persistent = false;
  ops::cuda::set_decode_layers_tuning(op_by_op);
  std::printf("op by op:\n");
  print_timeline(ds);
  ops::cuda::FeedForwardTuning one = fbase;
  one.fused = true;
  ops::cuda::set_feed_forward_tuning(one);
  std::printf("op by op, feed-forward in one kernel:\n");
  print_timeline(ds);
  print_feed_forward_trace(ds);
  ops::cuda::set_feed_forward_tuning(fbase);
  ops::cuda::AttentionTuning fused = base;
  fused.decode_fused_input = 1;
  ops::cuda::set_attention_tuning(fused);
  std::printf("input stage folded into the staged attention:\n");
  print_timeline(ds);
  ops::cuda::set_attention_tuning(base);
  ops::cuda::set_decode_layers_tuning(pbase);
  for (DType wdt : {DType::Q8, DType::Q4}) {
    if (!quantized) break;
    DecodeStep dq(d, T, wdt);
    std::printf("%s weights: %.3f ms (weights + KV %.0f MB: floor %.3f ms at 3 TB/s)\n", dtype_name(wdt), dq.step_ms(),
                dq.bytes() / 1e6, dq.bytes() / 3e9);
  }
}

// Whole decode steps with the GEMVs' transformed inputs (the down product's gate, the norm of
// wqkv and w13) staged per block or computed in every warp (LinearTuning::gemv_stage_gate,
// gemv_stage_norm); three rounds, so that the spread shows; then timelines.
void bench_decode_gemv(const Dims& d, int64_t T, bool timeline) {
  std::printf("\n== %s: decode step, the gate staged per block or per warp (graph), T = %lld ==\n", d.name,
              (long long)T);
  DecodeStep ds(d, T, DType::BF16);
  const ops::cuda::LinearTuning base = ops::cuda::linear_tuning();
  // (gate staged, norm staged, two blocks per SM for the down product)
  const bool settings[][3] = {{false, false, false}, {true, false, false}, {true, true, false}, {true, true, true}};
  const char* names[] = {"gate and norm in every warp", "gate staged per block", "gate and norm staged per block",
                         "staged, down product 2 blocks per SM"};
  const auto set = [&](int i) {
    ops::cuda::LinearTuning t = base;
    t.gemv_stage_gate = settings[i][0];
    t.gemv_stage_norm = settings[i][1];
    t.gemv_two_blocks = settings[i][2];
    ops::cuda::set_linear_tuning(t);
  };
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      set(i);
      std::printf("BF16 %-42s %.3f ms\n", names[i], ds.step_ms());
    }
  }
  if (timeline) {
    for (int i = 2; i < 4; ++i) {
      set(i);
      std::printf("%s:\n", names[i]);
      print_timeline(ds);
    }
  }
  ops::cuda::set_linear_tuning(base);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      g_quick = true;
    } else {
      g_only.push_back(argv[i]);  // a section name
    }
  }
  try {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "properties");
    std::printf("device: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
    if (section("prefill")) bench_prefill_attention();
    if (section("decode")) bench_decode_attention();
    const auto named = [](const char* n) {
      return std::find(g_only.begin(), g_only.end(), std::string(n)) != g_only.end();
    };
    if (named("decode-series")) bench_decode_series();
    if (named("decode-sweep")) bench_decode_sweep();
    if (section("small")) bench_small_ops();
    if (section("linear")) {
      const Dims d = kPerception;
      std::vector<LayerWeights> layers = make_layers(d, DType::BF16, int(d.layers));
      Tensor out_w = ops::prepare_linear_weight(random_cpu({kVocab, d.D}, 90, -0.05f, 0.05f), DType::BF16, Device::CUDA);
      bench_linear(layers, out_w, d, "BF16");
    }
    if (!g_quick && section("q8")) {
      const Dims d = kPerception;
      std::vector<LayerWeights> layers = make_layers(d, DType::Q8, int(d.layers));
      Tensor out_w = ops::prepare_linear_weight(random_cpu({kVocab, d.D}, 91, -0.05f, 0.05f), DType::Q8, Device::CUDA);
      bench_linear(layers, out_w, d, "Q8");
    }
    if (!g_quick && section("q4")) {
      const Dims d = kPerception;
      std::vector<LayerWeights> layers = make_layers(d, DType::Q4, int(d.layers));
      Tensor out_w = ops::prepare_linear_weight(random_cpu({kVocab, d.D}, 92, -0.05f, 0.05f), DType::Q4, Device::CUDA);
      bench_linear(layers, out_w, d, "Q4");
    }
    if (named("decode-gemv")) {
      bench_decode_gemv(kPerception, 3100, true);
      bench_decode_gemv(kPerception, 1230, false);
      bench_decode_gemv(kOcr, 3100, false);
    }
    if (named("decode-variants")) {
      bench_decode_variants(kPerception, 3100, true);
      bench_decode_variants(kPerception, 1230, false);
      bench_decode_variants(kOcr, 3100, false);
    }
    if (section("decode-ops")) {
      bench_decode_ops(kPerception, 3100);
      bench_decode_ops(kPerception, 1230);
      bench_decode_ops(kOcr, 3100);
    }
    if (section("stack")) {
      bench_stack(kPerception, DType::BF16, "BF16");
      bench_stack(kOcr, DType::BF16, "BF16");
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
