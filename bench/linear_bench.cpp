// CPU linear (ops::linear) at the Falcon shapes: decode GEMV (memory-bound, GB/s and ratio to
// the memory floor), prefill GEMM (compute-bound, GFLOP/s), and a whole 0.6B decode token.
// Optional baselines on the same shapes: OpenBLAS and oneDNN f32, when the bench was built with
// them (docs/cpu_matmul.md).
//
//   linear_bench [--benchmark_filter=REGEX] [google-benchmark flags]
//
// Names: gemv/<dtype>/<model>.<matrix>/M<rows>, gemm/<dtype>/<model>.<matrix>/M<rows>,
// token/0.6B/<dtype>/M<rows>, prepare/<dtype>/0.6B.output, openblas/..., onednn/...
// floor_x = measured time / (weight bytes / DRAM read bandwidth); the bandwidth is measured at
// start-up with the same read kernel as memory_bandwidth (1 GiB, all threads, best of 1-8
// streams per thread).
// Decode benches cycle through enough copies of the weight to exceed the last-level cache, as a
// real token does (it reads every layer once).
#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <memory>
#include <string>
#include <vector>

#include "core/parallel.h"
#include "core/tensor.h"
#include "ops/linear.h"
#include "stream_read.h"

#ifdef FALCON_BENCH_OPENBLAS
#include <cblas.h>
#endif
#ifdef FALCON_BENCH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using falcon::DType;
using falcon::Tensor;

struct Matrix {
  const char* name;
  int64_t n, k;
};
struct Model {
  const char* name;
  int layers;
  std::vector<Matrix> per_layer;
  Matrix output;
};

// MODEL.md: wqkv [(H+2KV)·hd, D], wo [D, H·hd], w13 [2F, D], w2 [D, F], output [V, D].
const Model kModel06{"0.6B", 28, {{"wqkv", 4096, 1024}, {"wo", 1024, 2048}, {"w13", 6144, 1024}, {"w2", 1024, 3072}},
                     {"output", 65536, 1024}};
const Model kModel03{"0.3B", 22, {{"wqkv", 2048, 768}, {"wo", 768, 1024}, {"w13", 4608, 768}, {"w2", 768, 2304}},
                     {"output", 65536, 768}};

constexpr DType kDtypes[] = {DType::F32, DType::BF16, DType::F16, DType::Q8, DType::Q4};
constexpr size_t kRotateBytes = size_t(1) << 30;  // decode working set: well past the LLC
constexpr int64_t kPrefillRows = 3095;           // 1 x 1024x768 segmentation prompt (PERF.md)

double dram_bandwidth() {
  static const double bw = falcon::bench::best_read_bandwidth(kRotateBytes, falcon::num_threads(), 3);
  return bw;
}

Tensor random_f32(int64_t rows, int64_t cols, uint32_t seed) {
  Tensor t = Tensor::empty({rows, cols}, DType::F32);
  uint32_t s = seed * 2654435761u + 1;
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = float(int32_t(s >> 8) - (1 << 23)) / float(1 << 23) * 0.05f;
  }
  return t;
}

// A byte copy of a prepared weight in memory like prepare_linear_weight's own (2 MiB-aligned,
// transparent huge pages asked for): Tensor::clone would use small pages and read slower.
Tensor copy_prepared(const Tensor& w) {
  constexpr size_t kHuge = size_t(2) << 20;
  void* p = nullptr;
  if (posix_memalign(&p, kHuge, std::max(w.nbytes(), size_t(64))) != 0) throw std::bad_alloc();
  madvise(p, w.nbytes() / kHuge * kHuge, MADV_HUGEPAGE);
  std::memcpy(p, w.raw(), w.nbytes());
  return Tensor::wrap(p, w.shape(), w.dtype(), falcon::Device::CPU, std::shared_ptr<void>(p, std::free));
}

// `copies` prepared copies of one random weight (quantising once, copying the bytes).
std::vector<Tensor> prepared_copies(const Matrix& m, DType dt, int copies) {
  std::vector<Tensor> out;
  out.push_back(falcon::ops::prepare_linear_weight(random_f32(m.n, m.k, 7), dt, falcon::Device::CPU));
  for (int i = 1; i < copies; ++i) out.push_back(copy_prepared(out[0]));
  return out;
}

template <class F>
void timed_loop(benchmark::State& state, F&& body, double* seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  int64_t i = 0;
  for (auto _ : state) body(i++);
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void set_decode_counters(benchmark::State& state, double seconds, double bytes_per_iter) {
  const double per_iter = seconds / double(state.iterations());
  state.counters["GB/s"] = bytes_per_iter / per_iter / 1e9;
  state.counters["floor_x"] = per_iter / (bytes_per_iter / dram_bandwidth());
  state.counters["us"] = per_iter * 1e6;
}

void gemv(benchmark::State& state, Matrix m, DType dt, int64_t rows) {
  const size_t bytes = size_t(m.n) * falcon::row_bytes(dt, m.k);
  const int copies = int(std::max<size_t>(1, (kRotateBytes + bytes - 1) / bytes));
  std::vector<Tensor> w = prepared_copies(m, dt, copies);
  Tensor x = random_f32(rows, m.k, 3), y = Tensor::empty({rows, m.n}, DType::F32);
  double s;
  timed_loop(state, [&](int64_t i) { falcon::ops::linear(x, w[size_t(i % copies)], nullptr, y, false); }, &s);
  set_decode_counters(state, s, double(bytes));
}

void set_gemm_counters(benchmark::State& state, double seconds, double flops_per_iter) {
  state.counters["GFLOP/s"] = flops_per_iter * double(state.iterations()) / seconds / 1e9;
  state.counters["ms"] = seconds / double(state.iterations()) * 1e3;
}

void gemm(benchmark::State& state, Matrix m, DType dt, int64_t rows) {
  Tensor w = prepared_copies(m, dt, 1)[0];
  Tensor x = random_f32(rows, m.k, 3), y = Tensor::empty({rows, m.n}, DType::F32);
  double s;
  timed_loop(state, [&](int64_t) { falcon::ops::linear(x, w, nullptr, y, false); }, &s);
  set_gemm_counters(state, s, 2.0 * double(rows) * double(m.n) * double(m.k));
}

// A whole decode token of the model: every layer's four matrices (distinct weights, as in the
// model) and the output projection, back to back. Activations are reused; only the weight
// streaming is measured, which is what the floor is about.
void token(benchmark::State& state, const Model* model, DType dt, int64_t rows) {
  std::vector<Tensor> w;
  size_t bytes = 0;
  for (const Matrix& m : model->per_layer) {
    std::vector<Tensor> c = prepared_copies(m, dt, model->layers);
    for (auto& t : c) w.push_back(std::move(t));
    bytes += size_t(model->layers) * size_t(m.n) * falcon::row_bytes(dt, m.k);
  }
  w.push_back(prepared_copies(model->output, dt, 1)[0]);
  bytes += size_t(model->output.n) * falcon::row_bytes(dt, model->output.k);
  // Interleave as a forward pass does: layer by layer.
  std::vector<const Tensor*> order;
  const size_t mats = model->per_layer.size();
  for (int l = 0; l < model->layers; ++l)
    for (size_t j = 0; j < mats; ++j) order.push_back(&w[j * size_t(model->layers) + size_t(l)]);
  order.push_back(&w.back());
  std::vector<Tensor> xs, ys;
  for (const Tensor* t : order) {
    xs.push_back(random_f32(rows, t->dim(1), 5));
    ys.push_back(Tensor::empty({rows, t->dim(0)}, DType::F32));
  }
  double s;
  timed_loop(state, [&](int64_t) {
    for (size_t i = 0; i < order.size(); ++i) falcon::ops::linear(xs[i], *order[i], nullptr, ys[i], false);
  }, &s);
  set_decode_counters(state, s, double(bytes));
  state.counters["ms"] = s / double(state.iterations()) * 1e3;
}

// Model load: prepare_linear_weight on the largest matrix (f32 file -> each dtype).
void prepare(benchmark::State& state, Matrix m, DType dt) {
  Tensor w = random_f32(m.n, m.k, 7);
  double s;
  timed_loop(state, [&](int64_t) { benchmark::DoNotOptimize(falcon::ops::prepare_linear_weight(w, dt, falcon::Device::CPU)); }, &s);
  state.counters["Mparams/s"] = double(m.n * m.k) * double(state.iterations()) / s / 1e6;
  state.counters["ms"] = s / double(state.iterations()) * 1e3;
}

#ifdef FALCON_BENCH_OPENBLAS
void openblas_gemv(benchmark::State& state, Matrix m, int64_t rows) {
  openblas_set_num_threads(falcon::num_threads());
  const size_t bytes = size_t(m.n * m.k) * 4;
  const int copies = int(std::max<size_t>(1, (kRotateBytes + bytes - 1) / bytes));
  std::vector<Tensor> w;
  w.push_back(random_f32(m.n, m.k, 7));
  for (int i = 1; i < copies; ++i) w.push_back(copy_prepared(w[0]));
  Tensor x = random_f32(rows, m.k, 3), y = Tensor::empty({rows, m.n}, DType::F32);
  double s;
  timed_loop(state, [&](int64_t i) {
    const float* wp = w[size_t(i % copies)].data<float>();
    if (rows == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(m.n), int(m.k), 1.f, wp, int(m.k), x.data<float>(), 1, 0.f,
                  y.data<float>(), 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(m.n), int(m.k), 1.f, x.data<float>(),
                  int(m.k), wp, int(m.k), 0.f, y.data<float>(), int(m.n));
    }
  }, &s);
  set_decode_counters(state, s, double(bytes));
}

void openblas_gemm(benchmark::State& state, Matrix m, int64_t rows) {
  openblas_set_num_threads(falcon::num_threads());
  Tensor w = random_f32(m.n, m.k, 7), x = random_f32(rows, m.k, 3), y = Tensor::empty({rows, m.n}, DType::F32);
  double s;
  timed_loop(state, [&](int64_t) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(m.n), int(m.k), 1.f, x.data<float>(),
                int(m.k), w.data<float>(), int(m.k), 0.f, y.data<float>(), int(m.n));
  }, &s);
  set_gemm_counters(state, s, 2.0 * double(rows) * double(m.n) * double(m.k));
}
#endif

#ifdef FALCON_BENCH_ONEDNN
// oneDNN f32 matmul with the weight reordered once into the layout oneDNN picks (format any),
// the same deal as our prepared weight. Few rows: copies rotated past the LLC, as for gemv.
void onednn(benchmark::State& state, Matrix m, int64_t rows) {
  using namespace dnnl;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dims src_dims{rows, m.k}, wei_dims{m.k, m.n}, dst_dims{rows, m.n};
  auto src_md = memory::desc(src_dims, memory::data_type::f32, memory::format_tag::ab);
  auto wei_any = memory::desc(wei_dims, memory::data_type::f32, memory::format_tag::any);
  auto dst_md = memory::desc(dst_dims, memory::data_type::f32, memory::format_tag::ab);
  auto pd = matmul::primitive_desc(matmul::desc(src_md, wei_any, dst_md), eng);
  Tensor w = random_f32(m.n, m.k, 7), x = random_f32(rows, m.k, 3), y = Tensor::empty({rows, m.n}, DType::F32);
  // Our [N, K] row-major weight is oneDNN's [K, N] in "ba".
  memory w_plain(memory::desc(wei_dims, memory::data_type::f32, memory::format_tag::ba), eng, w.data<float>());
  const bool decode = rows <= 16;
  const size_t bytes = size_t(m.n * m.k) * 4;
  const int copies = decode ? int(std::max<size_t>(1, (kRotateBytes + bytes - 1) / bytes)) : 1;
  std::vector<memory> packed;
  for (int i = 0; i < copies; ++i) {
    packed.emplace_back(pd.weights_desc(), eng);
    reorder(w_plain, packed.back()).execute(strm, w_plain, packed.back());
  }
  memory src(src_md, eng, x.data<float>()), dst(dst_md, eng, y.data<float>());
  matmul prim(pd);
  double s;
  timed_loop(state, [&](int64_t i) {
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, packed[size_t(i % copies)]}, {DNNL_ARG_DST, dst}});
    strm.wait();
  }, &s);
  if (decode) {
    set_decode_counters(state, s, double(bytes));
  } else {
    set_gemm_counters(state, s, 2.0 * double(rows) * double(m.n) * double(m.k));
  }
}
#endif

std::string matrix_name(const Model& model, const Matrix& m) { return std::string(model.name) + "." + m.name; }

void register_all() {
  for (const DType dt : kDtypes) {
    const std::string d = falcon::dtype_name(dt);
    for (const Model* model : {&kModel06, &kModel03}) {
      std::vector<Matrix> ms = model->per_layer;
      ms.push_back(model->output);
      for (const Matrix& m : ms) {
        for (const int64_t rows : {1, 4, 8, 16}) {
          benchmark::RegisterBenchmark(("gemv/" + d + "/" + matrix_name(*model, m) + "/M" + std::to_string(rows)).c_str(),
                                       gemv, m, dt, rows)
              ->UseRealTime()
              ->MinTime(0.2);
        }
      }
      for (const Matrix& m : model->per_layer) {
        benchmark::RegisterBenchmark(("gemm/" + d + "/" + matrix_name(*model, m) + "/M" + std::to_string(kPrefillRows)).c_str(),
                                     gemm, m, dt, kPrefillRows)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
    benchmark::RegisterBenchmark(("prepare/" + d + "/" + matrix_name(kModel06, kModel06.output)).c_str(), prepare,
                                 kModel06.output, dt)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    for (const int64_t rows : {1, 8, 16}) {
      benchmark::RegisterBenchmark(("token/0.6B/" + d + "/M" + std::to_string(rows)).c_str(), token, &kModel06, dt, rows)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
    }
  }
  for (const Model* model : {&kModel06, &kModel03}) {
    std::vector<Matrix> ms = model->per_layer;
    ms.push_back(model->output);
    for ([[maybe_unused]] const Matrix& m : ms) {
#ifdef FALCON_BENCH_OPENBLAS
      for (const int64_t rows : {1, 16}) {
        benchmark::RegisterBenchmark(("openblas/F32/" + matrix_name(*model, m) + "/M" + std::to_string(rows)).c_str(),
                                     openblas_gemv, m, rows)
            ->UseRealTime()
            ->MinTime(0.2);
      }
#endif
#ifdef FALCON_BENCH_ONEDNN
      for (const int64_t rows : {1, 16}) {
        benchmark::RegisterBenchmark(("onednn/F32/" + matrix_name(*model, m) + "/M" + std::to_string(rows)).c_str(),
                                     onednn, m, rows)
            ->UseRealTime()
            ->MinTime(0.2);
      }
#endif
    }
    for ([[maybe_unused]] const Matrix& m : model->per_layer) {
#ifdef FALCON_BENCH_OPENBLAS
      benchmark::RegisterBenchmark(("openblas/F32/" + matrix_name(*model, m) + "/M" + std::to_string(kPrefillRows)).c_str(),
                                   openblas_gemm, m, kPrefillRows)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
#endif
#ifdef FALCON_BENCH_ONEDNN
      benchmark::RegisterBenchmark(("onednn/F32/" + matrix_name(*model, m) + "/M" + std::to_string(kPrefillRows)).c_str(),
                                   onednn, m, kPrefillRows)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
#endif
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  std::printf("threads %d, DRAM read bandwidth %.1f GB/s (1 GiB, all threads)\n", falcon::num_threads(),
              dram_bandwidth() / 1e9);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
