#include "ops/chw_layout.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace falcon {
namespace {

class ChwLayoutTest : public ::testing::TestWithParam<Device> {};

TEST_P(ChwLayoutTest, HwcToChwPadsWithZeros) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({5, 7, 3}, 1);
  Tensor out = Tensor::empty({3, 8, 9}, DType::F32, dev);
  ops::hwc_to_chw(x.to(dev), out);
  Tensor got = test::to_cpu_f32(out);
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t y = 0; y < 8; ++y) {
      for (int64_t xx = 0; xx < 9; ++xx) {
        const float want = (y < 5 && xx < 7) ? x.data<float>()[(y * 7 + xx) * 3 + c] : 0.f;
        ASSERT_EQ(got.data<float>()[(c * 8 + y) * 9 + xx], want) << c << "," << y << "," << xx;
      }
    }
  }
}

TEST_P(ChwLayoutTest, HwcToChwAcrossTiles) {
  // Several 32 x 32 (pixel, channel) tiles, ragged in both, onto a larger canvas.
  const Device dev = GetParam();
  Tensor x = test::random_tensor({9, 10, 70}, 3);
  Tensor out = Tensor::empty({70, 12, 11}, DType::F32, dev);
  ops::hwc_to_chw(x.to(dev), out);
  Tensor got = test::to_cpu_f32(out);
  for (int64_t c = 0; c < 70; ++c) {
    for (int64_t y = 0; y < 12; ++y) {
      for (int64_t xx = 0; xx < 11; ++xx) {
        const float want = (y < 9 && xx < 10) ? x.data<float>()[(y * 10 + xx) * 70 + c] : 0.f;
        ASSERT_EQ(got.data<float>()[(c * 12 + y) * 11 + xx], want) << c << "," << y << "," << xx;
      }
    }
  }
}

TEST_P(ChwLayoutTest, CropTakesTopLeft) {
  const Device dev = GetParam();
  Tensor x = test::random_tensor({4, 6, 10}, 2);
  Tensor out = Tensor::empty({4, 3, 7}, DType::F32, dev);
  ops::crop_chw(x.to(dev), out);
  Tensor got = test::to_cpu_f32(out);
  for (int64_t c = 0; c < 4; ++c) {
    for (int64_t y = 0; y < 3; ++y) {
      for (int64_t xx = 0; xx < 7; ++xx) {
        ASSERT_EQ(got.data<float>()[(c * 3 + y) * 7 + xx], x.data<float>()[(c * 6 + y) * 10 + xx]);
      }
    }
  }
  Tensor too_big = Tensor::empty({4, 7, 7}, DType::F32, dev);
  EXPECT_THROW(ops::crop_chw(x.to(dev), too_big), InvalidArgument);
}

FALCON_INSTANTIATE_DEVICE_TESTS(ChwLayoutTest);

}  // namespace
}  // namespace falcon
