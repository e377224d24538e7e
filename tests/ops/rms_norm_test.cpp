#include "ops/rms_norm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class RmsNormTest : public ::testing::TestWithParam<Device> {};

// Scalar reference straight from the definition.
Tensor reference(const Tensor& x, const Tensor* w, float eps) {
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const int64_t n = x.dim(-1), rows = x.numel() / n;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < n; ++j) ss += double(x.data<float>()[r * n + j]) * x.data<float>()[r * n + j];
    const double inv = 1.0 / std::sqrt(ss / n + eps);
    for (int64_t j = 0; j < n; ++j) {
      out.data<float>()[r * n + j] = float(x.data<float>()[r * n + j] * inv * (w ? w->data<float>()[j] : 1.0f));
    }
  }
  return out;
}

TEST_P(RmsNormTest, MatchesScalarReference) {
  const Device dev = GetParam();
  for (const bool with_weight : {false, true}) {
    Tensor x = test::random_tensor({7, 96}, 1, -3, 3);
    Tensor w = test::random_tensor({96}, 2, 0.5, 1.5);
    Tensor want = reference(x, with_weight ? &w : nullptr, 1e-5f);
    Tensor xd = x.to(dev), wd = w.to(dev), out = Tensor::empty(x.shape(), DType::F32, dev);
    ops::rms_norm(xd, with_weight ? &wd : nullptr, 1e-5f, out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6) << "weight=" << with_weight;
  }
}

TEST_P(RmsNormTest, RejectsMismatchedShapes) {
  const Device dev = GetParam();
  Tensor x = Tensor::zeros({4, 8}, DType::F32, dev), out = Tensor::zeros({4, 9}, DType::F32, dev);
  EXPECT_THROW(ops::rms_norm(x, nullptr, 1e-5f, out), InvalidArgument);
}

FALCON_INSTANTIATE_DEVICE_TESTS(RmsNormTest);

}  // namespace
}  // namespace falcon
