#include "ops/bilinear_resize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class BilinearResizeTest : public ::testing::TestWithParam<Device> {};

// align_corners=False from the definition, in double.
Tensor reference(const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  Tensor out = Tensor::empty({c, oh, ow}, DType::F32);
  auto src = [](int64_t i, int64_t in, int64_t o) {
    const double s = (double(i) + 0.5) * double(in) / double(o) - 0.5;
    return s < 0 ? 0.0 : s;
  };
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < oh; ++i) {
      const double sy = src(i, h, oh);
      const int64_t y0 = int64_t(sy), y1 = std::min(y0 + 1, h - 1);
      for (int64_t j = 0; j < ow; ++j) {
        const double sx = src(j, w, ow);
        const int64_t x0 = int64_t(sx), x1 = std::min(x0 + 1, w - 1);
        auto at = [&](int64_t y, int64_t xx) {
          return double(x.data<float>()[(ch * h + y) * w + xx]);
        };
        const double ly = sy - double(y0), lx = sx - double(x0);
        out.data<float>()[(ch * oh + i) * ow + j] =
            float((1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                  ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1)));
      }
    }
  }
  return out;
}

TEST_P(BilinearResizeTest, MatchesScalarReference) {
  const Device dev = GetParam();
  struct Case {
    int64_t c, h, w, oh, ow;
  };
  for (const Case& cs : {Case{2, 40, 64, 120, 200}, Case{1, 32, 40, 30, 40}, Case{3, 5, 7, 5, 7},
                         Case{1, 1, 3, 4, 9}}) {
    Tensor x = test::random_tensor({cs.c, cs.h, cs.w}, 9, -5, 5);
    Tensor want = reference(x, cs.oh, cs.ow);
    Tensor out = Tensor::empty(want.shape(), DType::F32, dev);
    ops::bilinear_resize(x.to(dev), out);
    // The op takes the source coordinate in float as torch does (an error of ~1e-6 pixel
    // times slopes of up to ~10 per pixel); the reference here is exact.
    EXPECT_LT(test::max_abs_diff(test::to_cpu_f32(out), want), 1e-4) << cs.h << "x" << cs.w;
  }
}

TEST_P(BilinearResizeTest, TorchValuesForTwoByTwo) {
  // F.interpolate(tensor([[1., 2.], [3., 4.]])[None, None], size=(4, 4), mode="bilinear")
  const float want[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                          2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
  Tensor out = Tensor::empty({1, 4, 4}, DType::F32, GetParam());
  ops::bilinear_resize(Tensor::from_vector({1, 2, 3, 4}, {1, 2, 2}).to(GetParam()), out);
  Tensor got = test::to_cpu_f32(out);
  for (int i = 0; i < 16; ++i) EXPECT_FLOAT_EQ(got.data<float>()[i], want[i]) << i;
}

FALCON_INSTANTIATE_DEVICE_TESTS(BilinearResizeTest);

}  // namespace
}  // namespace falcon
