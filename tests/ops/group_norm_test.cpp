#include "ops/group_norm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class GroupNormTest : public ::testing::TestWithParam<Device> {};

// Scalar reference from the definition (two-pass statistics in double, libm exp).
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, int groups, float eps,
                 bool silu) {
  const int64_t c = x.dim(0), n = x.numel() / c, per = c / groups;
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  for (int g = 0; g < groups; ++g) {
    double mean = 0, var = 0;
    for (int64_t i = g * per * n; i < (g + 1) * per * n; ++i) mean += xp[i];
    mean /= double(per * n);
    for (int64_t i = g * per * n; i < (g + 1) * per * n; ++i)
      var += (xp[i] - mean) * (xp[i] - mean);
    var /= double(per * n);
    for (int64_t ch = g * per; ch < (g + 1) * per; ++ch) {
      for (int64_t i = 0; i < n; ++i) {
        double y = (xp[ch * n + i] - mean) / std::sqrt(var + eps) * w.data<float>()[ch] +
                   b.data<float>()[ch];
        if (silu) y = y / (1 + std::exp(-y));
        out.data<float>()[ch * n + i] = float(y);
      }
    }
  }
  return out;
}

TEST_P(GroupNormTest, MatchesScalarReference) {
  const Device dev = GetParam();
  // A mean far from zero checks that the variance does not cancel.
  for (const float offset : {0.f, 50.f}) {
    for (const bool silu : {false, true}) {
      Tensor x = test::random_tensor({16, 37, 41}, 1, -3 + offset, 3 + offset);
      Tensor w = test::random_tensor({16}, 2, 0.5, 1.5), b = test::random_tensor({16}, 3);
      Tensor want = reference(x, w, b, 8, 1e-5f, silu);
      Tensor xd = x.to(dev), out = Tensor::empty(x.shape(), DType::F32, dev);
      ops::group_norm(xd, w.to(dev), b.to(dev), 8, 1e-5f, silu, out);
      EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 2e-6)
          << "silu=" << silu << " offset=" << offset;
      ops::group_norm(xd, w.to(dev), b.to(dev), 8, 1e-5f, silu, xd);  // in place
      EXPECT_LT(test::rel_l2(test::to_cpu_f32(xd), want), 2e-6) << "in place";
    }
  }
}

TEST_P(GroupNormTest, MomentsAndAffineComposeToGroupNorm) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({16, 23, 19}, 4, 10, 14);
  Tensor w = test::random_tensor({16}, 5, 0.5, 1.5), b = test::random_tensor({16}, 6);
  // channel_moments against a direct two-pass computation in double.
  Tensor moments = Tensor::empty({16, 2}, DType::F32, dev);
  ops::channel_moments(x.to(dev), moments);
  Tensor m = test::to_cpu_f32(moments);
  const int64_t n = 23 * 19;
  for (int64_t c = 0; c < 16; ++c) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += x.data<float>()[c * n + i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i)
      var += (x.data<float>()[c * n + i] - mean) * (x.data<float>()[c * n + i] - mean);
    var /= double(n);
    EXPECT_NEAR(m.data<float>()[2 * c], mean, 1e-5 * std::fabs(mean));
    EXPECT_NEAR(m.data<float>()[2 * c + 1], var, 1e-5 * var);
  }
  // x * scale + shift from group_norm_affine is the group norm.
  Tensor scale = Tensor::empty({16}, DType::F32, dev), shift = Tensor::empty({16}, DType::F32, dev);
  ops::group_norm_affine(moments, w.to(dev), b.to(dev), 4, 1e-5f, scale, shift);
  Tensor sc = test::to_cpu_f32(scale), sh = test::to_cpu_f32(shift);
  Tensor got = Tensor::empty(x.shape(), DType::F32);
  for (int64_t i = 0; i < x.numel(); ++i) {
    got.data<float>()[i] = x.data<float>()[i] * sc.data<float>()[i / n] + sh.data<float>()[i / n];
  }
  EXPECT_LT(test::rel_l2(got, reference(x, w, b, 4, 1e-5f, false)), 2e-6);
}

TEST_P(GroupNormTest, MomentsOfALargeOffsetMap) {
  // More pixels than one block of a channel takes on CUDA, far from zero mean.
  const Device dev = GetParam();
  const int64_t n = 300 * 256;
  Tensor x = test::random_tensor({3, 300, 256}, 7, 40, 44);
  Tensor moments = Tensor::empty({3, 2}, DType::F32, dev);
  ops::channel_moments(x.to(dev), moments);
  Tensor m = test::to_cpu_f32(moments);
  for (int64_t c = 0; c < 3; ++c) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i) mean += x.data<float>()[c * n + i];
    mean /= double(n);
    for (int64_t i = 0; i < n; ++i)
      var += (x.data<float>()[c * n + i] - mean) * (x.data<float>()[c * n + i] - mean);
    var /= double(n);
    EXPECT_NEAR(m.data<float>()[2 * c], mean, 1e-6 * std::fabs(mean));
    EXPECT_NEAR(m.data<float>()[2 * c + 1], var, 1e-5 * var);
  }
}

TEST_P(GroupNormTest, RejectsBadArguments) {
  const Device dev = GetParam();
  Tensor x = Tensor::zeros({12, 4, 4}, DType::F32, dev), w = Tensor::zeros({12}, DType::F32, dev);
  EXPECT_THROW(ops::group_norm(x, w, w, 5, 1e-5f, false, x), InvalidArgument);
  Tensor w_bad = Tensor::zeros({11}, DType::F32, dev);
  EXPECT_THROW(ops::group_norm(x, w_bad, w, 4, 1e-5f, false, x), InvalidArgument);
}

FALCON_INSTANTIATE_DEVICE_TESTS(GroupNormTest);

}  // namespace
}  // namespace falcon
