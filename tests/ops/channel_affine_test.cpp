#include "ops/channel_affine.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class ChannelAffineTest : public ::testing::TestWithParam<Device> {};

TEST_P(ChannelAffineTest, ScalesAndShiftsEachChannel) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({3, 4, 5}, 1);
  Tensor a = test::random_tensor({3}, 2), b = test::random_tensor({3}, 3);
  Tensor xd = x.to(dev);
  ops::channel_affine(xd, a.to(dev), b.to(dev), xd);
  Tensor got = test::to_cpu_f32(xd);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = i / 20;
    EXPECT_FLOAT_EQ(got.data<float>()[i],
                    x.data<float>()[i] * a.data<float>()[c] + b.data<float>()[c]);
  }
}

TEST_P(ChannelAffineTest, SiluAfterTheAffineMap) {
  const Device dev = GetParam();
  // Includes saturated SiLU inputs; planes of 2000 (4-pixel accesses on CUDA) and of 35.
  for (const Shape& s : {Shape{3, 40, 50}, Shape{3, 5, 7}}) {
    Tensor x = test::random_tensor(s, 4, -30, 30);
    Tensor a = test::random_tensor({3}, 5), b = test::random_tensor({3}, 6);
    Tensor out = Tensor::empty(x.shape(), DType::F32, dev);
    ops::channel_affine(x.to(dev), a.to(dev), b.to(dev), out, /*silu=*/true);
    Tensor got = test::to_cpu_f32(out), want = Tensor::empty(x.shape(), DType::F32);
    const int64_t plane = s[1] * s[2];
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double y =
          double(x.data<float>()[i]) * a.data<float>()[i / plane] + b.data<float>()[i / plane];
      want.data<float>()[i] = float(y / (1 + std::exp(-y)));
    }
    EXPECT_LT(test::rel_l2(got, want), 1e-6) << shape_str(s);
  }
}

FALCON_INSTANTIATE_DEVICE_TESTS(ChannelAffineTest);

}  // namespace
}  // namespace falcon
