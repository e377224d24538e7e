#include "ops/conv2d.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <tuple>

#include "test_support.h"

namespace falcon {
namespace {

class Conv2dTest : public ::testing::TestWithParam<Device> {};

// Scalar reference straight from the definition, in double.
Tensor reference(const Tensor& x, const Tensor& w, const Tensor* bias, int p, ops::PadMode mode) {
  const int64_t ci = x.dim(0), h = x.dim(1), wd = x.dim(2), co = w.dim(0), k = w.dim(2);
  const int64_t ho = h + 2 * p - k + 1, wo = wd + 2 * p - k + 1;
  Tensor out = Tensor::empty({co, ho, wo}, DType::F32);
  auto pixel = [&](int64_t i, int64_t y, int64_t xx) -> double {
    if (mode == ops::PadMode::Reflect) {
      y = y < 0 ? -y : (y >= h ? 2 * (h - 1) - y : y);
      xx = xx < 0 ? -xx : (xx >= wd ? 2 * (wd - 1) - xx : xx);
    }
    if (y < 0 || y >= h || xx < 0 || xx >= wd) return 0.0;
    return x.data<float>()[(i * h + y) * wd + xx];
  };
  for (int64_t o = 0; o < co; ++o) {
    for (int64_t y = 0; y < ho; ++y) {
      for (int64_t xx = 0; xx < wo; ++xx) {
        double s = bias ? bias->data<float>()[o] : 0.0;
        for (int64_t i = 0; i < ci; ++i) {
          for (int64_t dy = 0; dy < k; ++dy) {
            for (int64_t dx = 0; dx < k; ++dx) {
              s += double(w.data<float>()[((o * ci + i) * k + dy) * k + dx]) *
                   pixel(i, y + dy - p, xx + dx - p);
            }
          }
        }
        out.data<float>()[(o * ho + y) * wo + xx] = float(s);
      }
    }
  }
  return out;
}

struct Case {
  int64_t ci, co, h, w, k;
  int pad;
  ops::PadMode mode;
  bool bias;
};

TEST_P(Conv2dTest, MatchesScalarReference) {
  const Device dev = GetParam();
  const Case cases[] = {
      {3, 16, 9, 11, 1, 0, ops::PadMode::Zeros, false},   // image encoder stem
      {20, 13, 7, 40, 1, 0, ops::PadMode::Zeros, true},   // ragged rows, columns past one tile
      {24, 17, 10, 9, 3, 1, ops::PadMode::Zeros, true},   // conv_segm shape class
      {16, 8, 6, 7, 3, 1, ops::PadMode::Reflect, false},  // aggregation
      {5, 7, 8, 8, 5, 2, ops::PadMode::Zeros, true},
      {4, 6, 9, 8, 3, 0, ops::PadMode::Zeros, false},   // valid convolution, smaller output
      {300, 9, 5, 6, 3, 1, ops::PadMode::Zeros, true},  // K = 2700 spans several panels
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    Tensor x = test::random_tensor({c.ci, c.h, c.w}, ++seed);
    Tensor w = test::random_tensor({c.co, c.ci, c.k, c.k}, ++seed);
    Tensor b = test::random_tensor({c.co}, ++seed);
    Tensor want = reference(x, w, c.bias ? &b : nullptr, c.pad, c.mode);
    Tensor xd = x.to(dev), wdev = w.to(dev), bd = b.to(dev);
    Tensor out = Tensor::empty(want.shape(), DType::F32, dev);
    ops::conv2d(xd, wdev, c.bias ? &bd : nullptr, c.pad, c.mode, out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6) << "ci=" << c.ci << " k=" << c.k;

    // accumulate adds onto what is there
    Tensor base = test::random_tensor(want.shape(), ++seed);
    Tensor acc = base.to(dev);
    ops::conv2d(xd, wdev, c.bias ? &bd : nullptr, c.pad, c.mode, acc, /*accumulate=*/true);
    Tensor want_acc = want.clone();
    for (int64_t i = 0; i < want.numel(); ++i) want_acc.data<float>()[i] += base.data<float>()[i];
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(acc), want_acc), 1e-6)
        << "accumulate ci=" << c.ci << " k=" << c.k;
  }
}

TEST_P(Conv2dTest, OneByOneRunsInPlace) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({24, 13, 17}, 3);
  Tensor w = test::random_tensor({24, 24, 1, 1}, 4);
  Tensor want = reference(x, w, nullptr, 0, ops::PadMode::Zeros);
  Tensor xd = x.to(dev);
  ops::conv2d(xd, w.to(dev), nullptr, 0, ops::PadMode::Zeros, xd);
  EXPECT_LT(test::rel_l2(test::to_cpu_f32(xd), want), 1e-6);
}

TEST_P(Conv2dTest, FusedInputTransformAndOutputMoments) {
  // conv(act(x * a + b)) with the moments of the (accumulated) result, against the plain
  // reference on a transformed input.
  const Device dev = GetParam();
  for (const bool silu : {false, true}) {
    for (const bool accumulate : {false, true}) {
      Tensor x = test::random_tensor({20, 17, 23}, 51, -3, 3);
      Tensor w = test::random_tensor({13, 20, 1, 1}, 52);
      Tensor bias = test::random_tensor({13}, 53, 2, 4);  // offset means
      Tensor a = test::random_tensor({20}, 54, 0.5, 2), b = test::random_tensor({20}, 55);
      Tensor xt = x.clone();
      const int64_t n = 17 * 23;
      for (int64_t i = 0; i < x.numel(); ++i) {
        const double y =
            double(x.data<float>()[i]) * a.data<float>()[i / n] + b.data<float>()[i / n];
        xt.data<float>()[i] = float(silu ? y / (1 + std::exp(-y)) : y);
      }
      Tensor want = reference(xt, w, &bias, 0, ops::PadMode::Zeros);
      Tensor base = test::random_tensor(want.shape(), 56);
      if (accumulate) {
        for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] += base.data<float>()[i];
      }
      Tensor out = accumulate ? base.to(dev) : Tensor::empty(want.shape(), DType::F32, dev);
      Tensor ad = a.to(dev), bd = b.to(dev), moments = Tensor::empty({13, 2}, DType::F32, dev);
      ops::Conv2dFusion f;
      f.in_scale = &ad;
      f.in_shift = &bd;
      f.in_silu = silu;
      f.out_moments = &moments;
      const Tensor bias_d = bias.to(dev);
      ops::conv2d(x.to(dev), w.to(dev), &bias_d, 0, ops::PadMode::Zeros, out, accumulate, f);
      EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6)
          << "silu=" << silu << " acc=" << accumulate;
      Tensor m = test::to_cpu_f32(moments);
      for (int64_t o = 0; o < 13; ++o) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) mean += want.data<float>()[o * n + i];
        mean /= double(n);
        for (int64_t i = 0; i < n; ++i) var += std::pow(want.data<float>()[o * n + i] - mean, 2);
        var /= double(n);
        EXPECT_NEAR(m.data<float>()[2 * o], mean, 1e-5 * std::fabs(mean) + 1e-6) << o;
        EXPECT_NEAR(m.data<float>()[2 * o + 1], var, 1e-5 * var) << o;
      }
    }
  }
  // Fusions are for 1x1 kernels only.
  Tensor x = Tensor::zeros({2, 4, 4}, DType::F32, dev),
         w3 = Tensor::zeros({2, 2, 3, 3}, DType::F32, dev);
  Tensor out = Tensor::zeros({2, 4, 4}, DType::F32, dev),
         moments = Tensor::zeros({2, 2}, DType::F32, dev);
  ops::Conv2dFusion f;
  f.out_moments = &moments;
  EXPECT_THROW(ops::conv2d(x, w3, nullptr, 1, ops::PadMode::Zeros, out, false, f), InvalidArgument);
}

// The TF32 path (tensor cores on CUDA; the CPU computes in f32 regardless): every kernel
// shape class, ragged tiles, more than one tile of output channels, accumulate, the fused
// input transform with in-place output and the epilogue's moments. TF32 keeps 10 mantissa
// bits (relative rounding 2^-11 per input), so the bound is 5e-3 rather than f32's 1e-6.
TEST_P(Conv2dTest, Tf32WithinItsBound) {
  const Device dev = GetParam();
  const Case cases[] = {
      {3, 16, 9, 11, 1, 0, ops::PadMode::Zeros, false},     // stem: K = 3, odd pixel count
      {128, 128, 40, 40, 1, 0, ops::PadMode::Zeros, false}, // AnyUp's 1x1, last tile partial
      {20, 13, 7, 40, 1, 0, ops::PadMode::Zeros, true},
      {24, 17, 10, 9, 3, 1, ops::PadMode::Zeros, true},
      {16, 8, 6, 7, 3, 1, ops::PadMode::Reflect, false},
      {5, 7, 8, 8, 5, 2, ops::PadMode::Zeros, true},
      {4, 6, 9, 8, 3, 0, ops::PadMode::Zeros, false},
      {300, 9, 5, 6, 3, 1, ops::PadMode::Zeros, true},
      {64, 200, 12, 12, 3, 1, ops::PadMode::Zeros, true},  // two tiles of output channels
  };
  uint64_t seed = 100;
  double worst = 0;
  for (const Case& c : cases) {
    Tensor x = test::random_tensor({c.ci, c.h, c.w}, ++seed);
    Tensor w = test::random_tensor({c.co, c.ci, c.k, c.k}, ++seed);
    Tensor b = test::random_tensor({c.co}, ++seed);
    Tensor want = reference(x, w, c.bias ? &b : nullptr, c.pad, c.mode);
    Tensor xd = x.to(dev), wdev = w.to(dev), bd = b.to(dev);
    Tensor out = Tensor::empty(want.shape(), DType::F32, dev);
    ops::conv2d(xd, wdev, c.bias ? &bd : nullptr, c.pad, c.mode, out, false, {},
                ops::MathPrecision::TF32);
    const double err = test::rel_l2(test::to_cpu_f32(out), want);
    worst = std::max(worst, err);
    EXPECT_LT(err, 5e-3) << "ci=" << c.ci << " co=" << c.co << " k=" << c.k;

    Tensor base = test::random_tensor(want.shape(), ++seed);
    Tensor acc = base.to(dev);
    ops::conv2d(xd, wdev, c.bias ? &bd : nullptr, c.pad, c.mode, acc, /*accumulate=*/true, {},
                ops::MathPrecision::TF32);
    Tensor want_acc = want.clone();
    for (int64_t i = 0; i < want.numel(); ++i) want_acc.data<float>()[i] += base.data<float>()[i];
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(acc), want_acc), 5e-3)
        << "accumulate ci=" << c.ci << " k=" << c.k;
  }
  std::cout << "[ metric   ] conv2d TF32 worst rel_l2 = " << worst << "\n";
}

TEST_P(Conv2dTest, Tf32FusedInPlaceWithMoments) {
  // GN + SiLU on the input, accumulate into the input itself (AnyUp's in-place stem and
  // residual shapes), moments of the result: checked against the returned output, which must
  // itself be within the TF32 bound of the exact result.
  // One tile row of channels (CUDA: the persistent pointwise kernel; 140 pixel tiles make its
  // blocks take more than one), and two (the generic kernel through a temporary).
  const Device dev = GetParam();
  for (const auto& [ch, h, wd] : {std::tuple<int64_t, int64_t, int64_t>{128, 19, 36},
                                  {160, 19, 36},
                                  {128, 112, 160}}) {
    for (const bool accumulate : {false, true}) {
      const int64_t n = h * wd;
      Tensor x = test::random_tensor({ch, h, wd}, 61, -3, 3);
      Tensor w = test::random_tensor({ch, ch, 1, 1}, 62, -0.2f, 0.2f);
      Tensor a = test::random_tensor({ch}, 63, 0.5, 2), b = test::random_tensor({ch}, 64);
      Tensor xt = x.clone();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const double y =
            double(x.data<float>()[i]) * a.data<float>()[i / n] + b.data<float>()[i / n];
        xt.data<float>()[i] = float(y / (1 + std::exp(-y)));
      }
      Tensor want = reference(xt, w, nullptr, 0, ops::PadMode::Zeros);
      if (accumulate) {
        for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] += x.data<float>()[i];
      }
      Tensor xd = x.to(dev), ad = a.to(dev), bd = b.to(dev);
      Tensor moments = Tensor::empty({ch, 2}, DType::F32, dev);
      ops::Conv2dFusion f;
      f.in_scale = &ad;
      f.in_shift = &bd;
      f.in_silu = true;
      f.out_moments = &moments;
      ops::conv2d(xd, w.to(dev), nullptr, 0, ops::PadMode::Zeros, xd, accumulate, f,
                  ops::MathPrecision::TF32);
      const Tensor got = test::to_cpu_f32(xd);
      EXPECT_LT(test::rel_l2(got, want), 5e-3) << "ch=" << ch << " acc=" << accumulate;
      const Tensor m = test::to_cpu_f32(moments);
      for (int64_t o = 0; o < ch; ++o) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; ++i) mean += got.data<float>()[o * n + i];
        mean /= double(n);
        for (int64_t i = 0; i < n; ++i) var += std::pow(got.data<float>()[o * n + i] - mean, 2);
        var /= double(n);
        EXPECT_NEAR(m.data<float>()[2 * o], mean, 1e-5 * std::sqrt(var) + 1e-6) << o;
        EXPECT_NEAR(m.data<float>()[2 * o + 1], var, 1e-5 * var) << o;
      }
    }
  }
}

TEST_P(Conv2dTest, RejectsBadArguments) {
  const Device dev = GetParam();
  Tensor x = Tensor::zeros({4, 5, 5}, DType::F32, dev);
  Tensor w = Tensor::zeros({2, 3, 3, 3}, DType::F32, dev);
  Tensor out = Tensor::zeros({2, 5, 5}, DType::F32, dev);
  EXPECT_THROW(ops::conv2d(x, w, nullptr, 1, ops::PadMode::Zeros, out),
               InvalidArgument);  // Ci mismatch
  Tensor w4 = Tensor::zeros({2, 4, 3, 3}, DType::F32, dev);
  Tensor bad_out = Tensor::zeros({2, 4, 4}, DType::F32, dev);
  EXPECT_THROW(ops::conv2d(x, w4, nullptr, 1, ops::PadMode::Zeros, bad_out), InvalidArgument);
  EXPECT_THROW(ops::conv2d(x, w4, nullptr, 5, ops::PadMode::Reflect, out), InvalidArgument);
}

FALCON_INSTANTIATE_DEVICE_TESTS(Conv2dTest);

}  // namespace
}  // namespace falcon
