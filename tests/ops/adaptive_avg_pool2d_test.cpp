#include "ops/adaptive_avg_pool2d.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace falcon {
namespace {

class AdaptiveAvgPool2dTest : public ::testing::TestWithParam<Device> {};

// torch's adaptive windows: [floor(i*H/h), ceil((i+1)*H/h)).
Tensor reference(const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  Tensor out = Tensor::empty({c, oh, ow}, DType::F32);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t y0 = (i * h) / oh, y1 = ((i + 1) * h + oh - 1) / oh;
        const int64_t x0 = (j * w) / ow, x1 = ((j + 1) * w + ow - 1) / ow;
        double s = 0;
        for (int64_t y = y0; y < y1; ++y) {
          for (int64_t xx = x0; xx < x1; ++xx) s += x.data<float>()[(ch * h + y) * w + xx];
        }
        out.data<float>()[(ch * oh + i) * ow + j] = float(s / double((y1 - y0) * (x1 - x0)));
      }
    }
  }
  return out;
}

TEST_P(AdaptiveAvgPool2dTest, MatchesScalarReference) {
  const Device dev = GetParam();
  struct Case {
    int64_t c, h, w, oh, ow;
  };
  for (const Case& cs :
       {Case{5, 32, 48, 4, 3}, Case{3, 16, 16, 8, 8}, Case{4, 10, 7, 3, 4}, Case{2, 9, 9, 9, 9},
        Case{3, 64, 64, 4, 4}, Case{2, 20, 600, 10, 300}}) {
    Tensor x = test::random_tensor({cs.c, cs.h, cs.w}, 7);
    Tensor want = reference(x, cs.oh, cs.ow);
    Tensor out = Tensor::empty(want.shape(), DType::F32, dev);
    ops::adaptive_avg_pool2d(x.to(dev), out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6)
        << cs.h << "x" << cs.w << " -> " << cs.oh << "x" << cs.ow;
  }
}

TEST_P(AdaptiveAvgPool2dTest, BlockMeanOfKnownValues) {
  // 2x2 blocks of a 4x4 ramp 0..15: means 2.5, 4.5, 10.5, 12.5.
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[size_t(i)] = float(i);
  Tensor out = Tensor::empty({1, 2, 2}, DType::F32, GetParam());
  ops::adaptive_avg_pool2d(Tensor::from_vector(v, {1, 4, 4}).to(GetParam()), out);
  Tensor got = test::to_cpu_f32(out);
  EXPECT_FLOAT_EQ(got.data<float>()[0], 2.5f);
  EXPECT_FLOAT_EQ(got.data<float>()[1], 4.5f);
  EXPECT_FLOAT_EQ(got.data<float>()[2], 10.5f);
  EXPECT_FLOAT_EQ(got.data<float>()[3], 12.5f);
}

FALCON_INSTANTIATE_DEVICE_TESTS(AdaptiveAvgPool2dTest);

}  // namespace
}  // namespace falcon
