#include "ops/feature_unification.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_support.h"

namespace falcon {
namespace {

class FeatureUnificationTest : public ::testing::TestWithParam<Device> {};

// From the reference's definition, step by step in double: depthwise conv of every channel
// with every kernel, divided by the in-image tap count, viewed as [O, c], softmax over O,
// mean over c.
Tensor reference(const Tensor& x, const Tensor& basis) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2), no = basis.dim(0), k = basis.dim(2),
                p = k / 2;
  Tensor out = Tensor::empty({no, h, w}, DType::F32);
  std::vector<double> y(static_cast<size_t>(c * no));
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t col = 0; col < w; ++col) {
      for (int64_t g = 0; g < c; ++g) {
        for (int64_t o = 0; o < no; ++o) {
          double s = 0;
          int64_t taps = 0;
          for (int64_t dy = 0; dy < k; ++dy) {
            for (int64_t dx = 0; dx < k; ++dx) {
              const int64_t sy = r + dy - p, sx = col + dx - p;
              if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
              ++taps;
              s += double(basis.data<float>()[(o * k + dy) * k + dx]) *
                   x.data<float>()[(g * h + sy) * w + sx];
            }
          }
          y[size_t(g * no + o)] = s / double(taps);
        }
      }
      for (int64_t row = 0; row < no; ++row) {
        double acc = 0;
        for (int64_t j = 0; j < c; ++j) {
          double mx = -1e300, sum = 0;
          for (int64_t rr = 0; rr < no; ++rr) mx = std::max(mx, y[size_t(rr * c + j)]);
          for (int64_t rr = 0; rr < no; ++rr) sum += std::exp(y[size_t(rr * c + j)] - mx);
          acc += std::exp(y[size_t(row * c + j)] - mx) / sum;
        }
        out.data<float>()[(row * h + r) * w + col] = float(acc / double(c));
      }
    }
  }
  return out;
}

TEST_P(FeatureUnificationTest, MatchesScalarReference) {
  const Device dev = GetParam();
  // c = 6 with O = 16 makes the [O, c] reinterpretation differ from a transpose. Widths that
  // are multiples of 4 take the CUDA kernel over pixel quads (k 3, 5, 7), others the generic one.
  for (const auto& [c, o, k, h, w] : {std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>{
                                          6, 16, 5, 7, 9},
                                      {3, 8, 3, 7, 9},
                                      {40, 8, 5, 7, 9},
                                      {6, 16, 5, 7, 12},
                                      {16, 8, 5, 9, 16},
                                      {5, 12, 3, 6, 8},
                                      {4, 8, 7, 10, 12}}) {
    Tensor x = test::random_tensor({c, h, w}, 21, -2, 2);
    Tensor basis = test::random_tensor({o, 1, k, k}, 22, -1, 1);
    Tensor want = reference(x, basis);
    Tensor out = Tensor::empty(want.shape(), DType::F32, dev);
    ops::feature_unification(x.to(dev), basis.to(dev), out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6)
        << "c=" << c << " O=" << o << " k=" << k << " " << h << "x" << w;
  }
}

FALCON_INSTANTIATE_DEVICE_TESTS(FeatureUnificationTest);

}  // namespace
}  // namespace falcon
