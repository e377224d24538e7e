#include "ops/channel_norm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class ChannelNormTest : public ::testing::TestWithParam<Device> {};

// mode 0: L2 normalise with eps; mode 1: RMS norm with weight.
Tensor reference(const Tensor& x, const Tensor* w, float eps) {
  const int64_t c = x.dim(0), n = x.numel() / c;
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  for (int64_t p = 0; p < n; ++p) {
    double ss = 0;
    for (int64_t ch = 0; ch < c; ++ch)
      ss += double(x.data<float>()[ch * n + p]) * x.data<float>()[ch * n + p];
    const double f =
        w ? 1.0 / std::sqrt(ss / double(c) + eps) : 1.0 / std::max(std::sqrt(ss), double(eps));
    for (int64_t ch = 0; ch < c; ++ch) {
      out.data<float>()[ch * n + p] =
          float(x.data<float>()[ch * n + p] * f * (w ? w->data<float>()[ch] : 1.f));
    }
  }
  return out;
}

TEST_P(ChannelNormTest, MatchesScalarReference) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({24, 13, 29}, 5, -2, 2);
  Tensor w = test::random_tensor({24}, 6, 0.5, 1.5);
  Tensor out = Tensor::empty(x.shape(), DType::F32, dev);
  ops::channel_l2_normalize(x.to(dev), 1e-12f, out);
  EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), reference(x, nullptr, 1e-12f)), 1e-6);
  const float eps = 1.1920929e-7f;
  ops::channel_rms_norm(x.to(dev), w.to(dev), eps, out);
  EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), reference(x, &w, eps)), 1e-6);
  Tensor xd = x.to(dev);
  ops::channel_rms_norm(xd, w.to(dev), eps, xd);  // in place
  EXPECT_LT(test::rel_l2(test::to_cpu_f32(xd), reference(x, &w, eps)), 1e-6);
}

TEST_P(ChannelNormTest, ZeroPixelStaysZero) {
  // F.normalize clamps the norm at eps, so an all-zero pixel (padding) maps to 0, not NaN.
  Tensor out = Tensor::empty({4, 1, 2}, DType::F32, GetParam());
  ops::channel_l2_normalize(Tensor::zeros({4, 1, 2}, DType::F32, GetParam()), 1e-12f, out);
  Tensor got = test::to_cpu_f32(out);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(got.data<float>()[i], 0.f);
}

FALCON_INSTANTIATE_DEVICE_TESTS(ChannelNormTest);

}  // namespace
}  // namespace falcon
