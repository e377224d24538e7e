#include "ops/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_support.h"

namespace falcon {
namespace {

class AttentionTest : public ::testing::TestWithParam<Device> {};

// Straight from the definition: dense mask, softmax in double, sink gate.
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks, const ops::AttentionMask& m) {
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), T = k.dim(0), K = v.dim(1);
  Tensor out = Tensor::zeros({S, H, hd}, DType::F32);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < S; ++i) {
      const int64_t p = m.q_offset + i;
      std::vector<double> s(static_cast<size_t>(T), -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        const bool in_img = p >= m.image_begin && p < m.image_end && j >= m.image_begin && j < m.image_end;
        if (!(j <= p || in_img)) continue;
        double d = 0;
        for (int64_t c = 0; c < hd; ++c) d += double(q.data<float>()[(i * H + h) * hd + c]) * k.data<float>()[(j * H + h) * hd + c];
        s[size_t(j)] = d / std::sqrt(double(hd));
        mx = std::max(mx, s[size_t(j)]);
      }
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) sum += std::exp(s[size_t(j)] - mx);
      const double lse = mx + std::log(sum);
      const double gate = 1 / (1 + std::exp(-(lse - sinks.data<float>()[h])));
      for (int64_t c = 0; c < hd; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < T; ++j) acc += std::exp(s[size_t(j)] - mx) / sum * v.data<float>()[(j * K + h / (H / K)) * hd + c];
        out.data<float>()[(i * H + h) * hd + c] = float(acc * gate);
      }
    }
  }
  return out;
}

struct Case {
  int64_t S, q_offset, H, K, hd, img_begin, img_end;
};

TEST_P(AttentionTest, MatchesDenseReference) {
  const Device dev = GetParam();
  const std::vector<Case> cases = {
      {9, 0, 4, 2, 32, 0, 0},      // causal only, GQA
      {40, 0, 4, 2, 32, 3, 30},    // image block inside the prompt
      {1, 40, 4, 2, 32, 3, 30},    // decode step after that prompt
      {3, 37, 4, 4, 24, 1, 20},    // several decode rows, no GQA, head_dim 24
      {70, 0, 8, 2, 64, 1, 66},    // group of 4
      {17, 0, 2, 1, 128, 0, 17},   // the whole prompt is one image span
      // One row over a long cache (the CPU's chunked decode path): a partial last chunk,
      // a whole number of chunks with the image block behind, an odd head_dim.
      {1, 3000, 4, 2, 64, 5, 2000},
      {1, 2047, 16, 8, 128, 1, 1000},
      {1, 1024, 3, 3, 40, 0, 0},
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    const int64_t T = c.q_offset + c.S;
    Tensor q = test::random_tensor({c.S, c.H, c.hd}, ++seed, -2, 2);
    Tensor k = test::random_tensor({T, c.H, c.hd}, ++seed, -2, 2);
    Tensor v = test::random_tensor({T, c.K, c.hd}, ++seed);
    Tensor sinks = test::random_tensor({c.H}, ++seed, -3, 3);
    const ops::AttentionMask mask{c.q_offset, c.img_begin, c.img_end};
    Tensor want = reference(q, k, v, sinks, mask);
    Tensor out = Tensor::empty({c.S, c.H, c.hd}, DType::F32, dev);
    ops::attention(q.to(dev), k.to(dev), v.to(dev), sinks.to(dev), mask, out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 2e-6) << "S=" << c.S << " off=" << c.q_offset << " H=" << c.H;
  }
}

TEST_P(AttentionTest, RejectsInconsistentKeyCount) {
  const Device dev = GetParam();
  Tensor q = Tensor::zeros({2, 2, 8}, DType::F32, dev), k = Tensor::zeros({5, 2, 8}, DType::F32, dev);
  Tensor v = Tensor::zeros({5, 1, 8}, DType::F32, dev), s = Tensor::zeros({2}, DType::F32, dev);
  Tensor out = Tensor::zeros({2, 2, 8}, DType::F32, dev);
  EXPECT_THROW(ops::attention(q, k, v, s, ops::AttentionMask{0, 0, 0}, out), InvalidArgument);
}

FALCON_INSTANTIATE_DEVICE_TESTS(AttentionTest);

}  // namespace
}  // namespace falcon
