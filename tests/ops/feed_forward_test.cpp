#include "ops/feed_forward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "ops/cuda_graph.h"
#include "ops/linear.h"
#include "test_support.h"

namespace falcon {
namespace {

// x += w2 . squared_relu_gate(w13 . rms_norm(x)) against a double-precision reference written
// from MODEL.md (weightless RMS norm, w13 rows interleaved gate/up, relu(gate)^2 * up).
class FeedForwardTest : public ::testing::TestWithParam<Device> {};

constexpr float kEps = 1e-5f;

struct Shape3 {
  int64_t B, D, F;
};

Tensor rounded(const Tensor& x, DType dtype) {
  return test::to_cpu_f32(test::convert(x, dtype, Device::CPU));
}

struct Weights {
  Tensor w13, w2;  // F32 CPU, values representable in bf16
};

Weights make_weights(const Shape3& s, uint64_t seed) {
  const float a13 = 2.f / std::sqrt(float(s.D)), a2 = 2.f / std::sqrt(float(s.F));
  return {rounded(test::random_tensor({2 * s.F, s.D}, seed + 1, -a13, a13), DType::BF16),
          rounded(test::random_tensor({s.D, s.F}, seed + 2, -a2, a2), DType::BF16)};
}

// The reference: x [B, D] F32 CPU -> x after the feed-forward.
Tensor reference(const Weights& w, const Tensor& x) {
  const int64_t B = x.dim(0), D = x.dim(1), F = w.w2.dim(1);
  Tensor out = x.clone();
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = x.data<float>() + b * D;
    double ss = 0;
    for (int64_t k = 0; k < D; ++k) ss += double(xr[k]) * xr[k];
    const double inv = 1 / std::sqrt(ss / double(D) + kEps);
    std::vector<double> g(static_cast<size_t>(F));
    for (int64_t j = 0; j < F; ++j) {
      double gate = 0, up = 0;
      for (int64_t k = 0; k < D; ++k) {
        gate += double(w.w13.data<float>()[(2 * j) * D + k]) * xr[k] * inv;
        up += double(w.w13.data<float>()[(2 * j + 1) * D + k]) * xr[k] * inv;
      }
      gate = std::max(gate, 0.0);
      g[size_t(j)] = gate * gate * up;
    }
    for (int64_t i = 0; i < D; ++i) {
      double s = 0;
      for (int64_t j = 0; j < F; ++j) s += double(w.w2.data<float>()[i * F + j]) * g[size_t(j)];
      out.data<float>()[b * D + i] = float(xr[i] + s);
    }
  }
  return out;
}

struct Outcome {
  Tensor x;  // F32 CPU result
  double err;
};

// One call on `dev` in `dtype` from x0 (F32 CPU, representable in dtype).
Outcome run_once(Device dev, DType dtype, const Weights& w, const Tensor& x0) {
  const int64_t B = x0.dim(0), D = x0.dim(1), F = w.w2.dim(1);
  const Tensor w13 = ops::prepare_linear_weight(w.w13, dtype, dev);
  const Tensor w2 = ops::prepare_linear_weight(w.w2, dtype, dev);
  const auto act = [&](const Shape& s) {
    return test::convert(Tensor::zeros(s, DType::F32), dtype, dev);
  };
  Tensor x = test::convert(x0, dtype, dev), n = act({B, D}), a = act({B, 2 * F}), g = act({B, F});
  ops::feed_forward(x, w13, w2, kEps, {&n, &a, &g});
  Outcome r{test::to_cpu_f32(x), 0.0};
  r.err = test::rel_l2(r.x, reference(w, x0));
  return r;
}

std::vector<Shape3> shapes() {
  return {
      {1, 1024, 3072},  // the 0.6B model's
      {1, 768, 2304},   // the OCR and 300M models'
      {1, 256, 512},    //
      {1, 512, 200},    // 8 hidden units a block
      {1, 256, 24},     // a few blocks, one group
      {3, 256, 512},    // several rows (two products on every device)
      {1, 320, 512},    // D not a multiple of 256 (two products)
  };
}

TEST_P(FeedForwardTest, MatchesTheReference) {
  const Device dev = GetParam();
  uint64_t seed = 5;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    if (dtype != DType::F32 && dev == Device::CPU) continue;  // the CPU computes in F32
    for (const Shape3& s : shapes()) {
      const Weights w = make_weights(s, seed += 10);
      const Tensor x0 = rounded(test::random_tensor({s.B, s.D}, seed + 3, -2, 2), dtype);
      const Outcome r = run_once(dev, dtype, w, x0);
      std::printf("[ error    ] feed_forward %s %s B=%lld D=%lld F=%lld: x %.2e\n",
                  device_name(dev), dtype_name(dtype), (long long)s.B, (long long)s.D,
                  (long long)s.F, r.err);
      EXPECT_LT(r.err, dtype == DType::F32 ? 1e-5 : 1e-2)
          << dtype_name(dtype) << " D=" << s.D << " F=" << s.F;
      // The update is not negligible beside x (else the check above could not fail).
      EXPECT_GT(test::rel_l2(r.x, x0), 0.05) << "D=" << s.D << " F=" << s.F;
    }
  }
}

TEST_P(FeedForwardTest, RejectsMismatchedShapes) {
  const Device dev = GetParam();
  const auto z = [&](const Shape& s) { return Tensor::zeros(s, DType::F32, dev); };
  Tensor x = z({1, 256}), w13 = z({512, 256}), w2 = z({256, 256}), n = z({1, 256}), a = z({1, 512}),
         g = z({1, 256});
  Tensor w13_bad = z({510, 256}), w2_bad = z({255, 256}), g_bad = z({1, 255});
  EXPECT_NO_THROW(ops::feed_forward(x, w13, w2, kEps, {&n, &a, &g}));
  EXPECT_THROW(ops::feed_forward(x, w13_bad, w2, kEps, {&n, &a, &g}), InvalidArgument);
  EXPECT_THROW(ops::feed_forward(x, w13, w2_bad, kEps, {&n, &a, &g}), InvalidArgument);
  EXPECT_THROW(ops::feed_forward(x, w13, w2, kEps, {&n, &a, &g_bad}), InvalidArgument);
  EXPECT_THROW(ops::feed_forward(x, w13, w2, kEps, {&n, &a, nullptr}), InvalidArgument);
}

#ifdef FALCON_HAS_CUDA
// The one-kernel form: it takes the decode shapes; it agrees with the two products to bf16
// rounding; it gives the same bits on every call (the tree's order does not depend on which
// block finishes last) and its counters reset themselves (calls in a row, a replayed graph);
// every block size and group size matches the reference.
TEST_P(FeedForwardTest, OneKernelForm) {
  const Device dev = GetParam();
  if (dev != Device::CUDA) GTEST_SKIP() << "the CUDA kernel";
  const ops::cuda::FeedForwardTuning saved = ops::cuda::feed_forward_tuning();
  ops::cuda::FeedForwardTuning on = saved;  // off by default (docs/cuda.md, Phase 9)
  on.fused = true;
  ops::cuda::set_feed_forward_tuning(on);
  const Shape3 s{1, 1024, 3072};
  const Weights w = make_weights(s, 77);
  const Tensor w13 = ops::prepare_linear_weight(w.w13, DType::BF16, dev);
  const Tensor w2 = ops::prepare_linear_weight(w.w2, DType::BF16, dev);
  {
    Tensor x = Tensor::zeros({1, s.D}, DType::BF16, dev);
    EXPECT_TRUE(ops::cuda::feed_forward(x, w13, w2, kEps));
    Tensor x3 = Tensor::zeros({3, s.D}, DType::BF16, dev);
    EXPECT_FALSE(ops::cuda::feed_forward(x3, w13, w2, kEps));
  }
  const Tensor x0 = rounded(test::random_tensor({1, s.D}, 78, -2, 2), DType::BF16);
  const Outcome fused = run_once(dev, DType::BF16, w, x0);
  ops::cuda::FeedForwardTuning off = on;
  off.fused = false;
  ops::cuda::set_feed_forward_tuning(off);
  const Outcome two = run_once(dev, DType::BF16, w, x0);
  ops::cuda::set_feed_forward_tuning(on);
  const double vs_two = test::rel_l2(fused.x, two.x);
  std::printf("[ error    ] feed_forward BF16 one kernel %.2e, two products %.2e, between %.2e\n",
              fused.err, two.err, vs_two);
  EXPECT_LT(fused.err, 2 * two.err + 1e-3);
  EXPECT_LT(vs_two, 5e-3);

  // Calls in a row, then a graph replayed over new inputs: each matches the reference, and a
  // repeated input gives the same bits.
  Tensor x = Tensor::zeros({1, s.D}, DType::BF16, dev);
  Tensor n = Tensor::zeros({1, s.D}, DType::BF16, dev),
         a = Tensor::zeros({1, 2 * s.F}, DType::BF16, dev),
         g = Tensor::zeros({1, s.F}, DType::BF16, dev);
  const auto call = [&] { ops::feed_forward(x, w13, w2, kEps, {&n, &a, &g}); };
  ops::cuda::Graph graph;
  Tensor first;
  for (int i = 0; i < 6; ++i) {
    const Tensor xi =
        i % 3 == 2 ? x0
                   : rounded(test::random_tensor({1, s.D}, 90 + uint64_t(i), -2, 2), DType::BF16);
    x.copy_from(test::convert(xi, DType::BF16, dev));
    if (i < 3) {
      call();
    } else {
      if (!graph.ready()) graph.capture(call);
      graph.launch();
    }
    const Tensor got = test::to_cpu_f32(x);
    EXPECT_LT(test::rel_l2(got, reference(w, xi)), 1e-2) << "call " << i;
    if (i % 3 == 2) {
      EXPECT_EQ(test::max_abs_diff(got, fused.x), 0.0) << "call " << i;
    }
  }

  // Block and group sizes.
  struct Variant {
    int chunk, group;
  };
  for (const Variant v : {Variant{8, 0}, Variant{16, 1}, Variant{24, 7}, Variant{32, 200}}) {
    ops::cuda::FeedForwardTuning t = on;
    t.chunk = v.chunk;
    t.group = v.group;
    ops::cuda::set_feed_forward_tuning(t);
    for (const Shape3& sv : {Shape3{1, 1024, 3072}, Shape3{1, 768, 2304}, Shape3{1, 512, 96}}) {
      const Weights wv = make_weights(sv, 300 + uint64_t(v.chunk));
      const Tensor xv = rounded(test::random_tensor({1, sv.D}, 301, -2, 2), DType::BF16);
      Tensor probe = Tensor::zeros({1, sv.D}, DType::BF16, dev);
      const bool takes =
          ops::cuda::feed_forward(probe, ops::prepare_linear_weight(wv.w13, DType::BF16, dev),
                                  ops::prepare_linear_weight(wv.w2, DType::BF16, dev), kEps);
      EXPECT_EQ(takes, sv.F % v.chunk == 0) << "chunk " << v.chunk << " F=" << sv.F;
      const Outcome r = run_once(dev, DType::BF16, wv, xv);
      EXPECT_LT(r.err, 1e-2) << "chunk " << v.chunk << " group " << v.group << " D=" << sv.D;
    }
  }
  ops::cuda::set_feed_forward_tuning(saved);
}
#endif

FALCON_INSTANTIATE_DEVICE_TESTS(FeedForwardTest);

}  // namespace
}  // namespace falcon
