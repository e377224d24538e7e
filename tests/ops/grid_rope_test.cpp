#include "ops/grid_rope.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class GridRopeTest : public ::testing::TestWithParam<Device> {};

// Direct evaluation: angle per pixel and channel, libm cos / sin in double.
Tensor reference(const Tensor& x, const Tensor& f) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2), half = c / 2;
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  auto lin = [](int64_t i, int64_t n) { return n == 1 ? 0.0 : double(i) / double(n - 1); };
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t col = 0; col < w; ++col) {
      for (int64_t j = 0; j < c; ++j) {
        const double a = lin(r, h) * f.data<float>()[j] + lin(col, w) * f.data<float>()[c + j];
        const double xj = x.data<float>()[(j * h + r) * w + col];
        const double rot = j < half ? -double(x.data<float>()[((j + half) * h + r) * w + col])
                                    : double(x.data<float>()[((j - half) * h + r) * w + col]);
        out.data<float>()[(j * h + r) * w + col] = float(xj * std::cos(a) + rot * std::sin(a));
      }
    }
  }
  return out;
}

TEST_P(GridRopeTest, MatchesScalarReference) {
  const Device dev = GetParam();
  for (const Shape& s : {Shape{16, 9, 13}, Shape{8, 1, 5}, Shape{8, 6, 20}, Shape{4, 3, 1100}}) {
    Tensor x = test::random_tensor(s, 11);
    Tensor f = test::random_tensor({2, s[0]}, 12, -4, 4);
    Tensor want = reference(x, f);
    Tensor out = Tensor::empty(s, DType::F32, dev);
    ops::grid_rope(x.to(dev), f.to(dev), out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6);
    Tensor xd = x.to(dev);
    ops::grid_rope(xd, f.to(dev), xd);  // in place
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(xd), want), 1e-6);
  }
}

FALCON_INSTANTIATE_DEVICE_TESTS(GridRopeTest);

}  // namespace
}  // namespace falcon
