#include "ops/window_cross_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "test_support.h"

namespace falcon {
namespace {

class WindowCrossAttentionTest : public ::testing::TestWithParam<Device> {};

// Dense reference: every query against every key, with the window as a mask (the
// reference's mask_mod), softmax in double.
Tensor reference(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float ratio,
                 float scale) {
  const int64_t H = q.dim(1), W = q.dim(2), h = k.dim(1), w = k.dim(2);
  const int64_t dq = q.dim(0) / heads, dv = v.dim(0) / heads;
  Tensor out = Tensor::empty({v.dim(0), H, W}, DType::F32);
  std::vector<double> s(static_cast<size_t>(h * w));
  for (int hd = 0; hd < heads; ++hd) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const ops::KeyWindow wr = ops::attention_window(y, H, h, ratio),
                             wc = ops::attention_window(x, W, w, ratio);
        double mx = -1e300;
        for (int64_t j = 0; j < h * w; ++j) {
          const int64_t kr = j / w, kc = j % w;
          if (kr < wr.begin || kr >= wr.end || kc < wc.begin || kc >= wc.end) {
            s[size_t(j)] = -INFINITY;
            continue;
          }
          double dot = 0;
          for (int64_t d = 0; d < dq; ++d) {
            dot += double(q.data<float>()[((hd * dq + d) * H + y) * W + x]) *
                   k.data<float>()[(hd * dq + d) * h * w + j];
          }
          s[size_t(j)] = dot * scale;
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t e = 0; e < dv; ++e) {
          double o = 0;
          for (int64_t j = 0; j < h * w; ++j)
            o += s[size_t(j)] * v.data<float>()[(hd * dv + e) * h * w + j];
          out.data<float>()[((hd * dv + e) * H + y) * W + x] = float(o / sum);
        }
      }
    }
  }
  return out;
}

TEST_P(WindowCrossAttentionTest, MatchesDenseMaskedReference) {
  const Device dev = GetParam();
  struct Case {
    int heads;
    int64_t dq, dv, H, W, h, w;
  };
  // AnyUp's geometry (8x upsampling, square) and ragged ones (tiles cut by the grid edge).
  // AnyUp's head dims (32, 64) with a union larger than one chunk of keys; a v head dim
  // above 64 (the thread-per-query kernel on CUDA).
  for (const Case& c :
       {Case{4, 8, 4, 64, 64, 8, 8}, Case{2, 16, 8, 40, 27, 6, 5}, Case{1, 4, 33, 9, 70, 3, 11},
        Case{2, 32, 64, 48, 40, 24, 20}, Case{1, 8, 72, 16, 16, 4, 4}}) {
    Tensor q = test::random_tensor({c.heads * c.dq, c.H, c.W}, 31, -2, 2);
    Tensor k = test::random_tensor({c.heads * c.dq, c.h, c.w}, 32, -2, 2);
    Tensor v = test::random_tensor({c.heads * c.dv, c.h, c.w}, 33);
    const float scale = 1.f / std::sqrt(float(c.dq));
    Tensor want = reference(q, k, v, c.heads, 0.1f, scale);
    Tensor out = Tensor::empty(want.shape(), DType::F32, dev);
    ops::window_cross_attention(q.to(dev), k.to(dev), v.to(dev), c.heads, 0.1f, scale, out);
    EXPECT_LT(test::rel_l2(test::to_cpu_f32(out), want), 1e-6)
        << c.H << "x" << c.W << " <- " << c.h << "x" << c.w;
  }
}

TEST_P(WindowCrossAttentionTest, SmallerOutputIsTheTopLeftCrop) {
  const Device dev = GetParam();
  Tensor q = test::random_tensor({2 * 8, 48, 40}, 41), k = test::random_tensor({2 * 8, 6, 5}, 42);
  Tensor v = test::random_tensor({2 * 4, 6, 5}, 43);
  Tensor full = reference(q, k, v, 2, 0.1f, 0.35f);
  Tensor out = Tensor::empty({8, 21, 30}, DType::F32, dev);
  ops::window_cross_attention(q.to(dev), k.to(dev), v.to(dev), 2, 0.1f, 0.35f, out);
  Tensor got = test::to_cpu_f32(out);
  double worst = 0;
  for (int64_t c = 0; c < 8; ++c) {
    for (int64_t y = 0; y < 21; ++y) {
      for (int64_t x = 0; x < 30; ++x) {
        worst = std::max(worst, std::fabs(double(got.data<float>()[(c * 21 + y) * 30 + x]) -
                                          full.data<float>()[(c * 48 + y) * 40 + x]));
      }
    }
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(AttentionWindow, MatchesWindow2dValues) {
  // 64 query rows over 8 key rows, ratio 0.1: row 0 at 1/128 sees [0, ceil(0.1078*8)=1);
  // row 31 at 0.4921875 sees [floor(0.392*8)=3, ceil(0.592*8)=5); the last row sees [7, 8).
  EXPECT_EQ(ops::attention_window(0, 64, 8, 0.1f).begin, 0);
  EXPECT_EQ(ops::attention_window(0, 64, 8, 0.1f).end, 1);
  EXPECT_EQ(ops::attention_window(31, 64, 8, 0.1f).begin, 3);
  EXPECT_EQ(ops::attention_window(31, 64, 8, 0.1f).end, 5);
  EXPECT_EQ(ops::attention_window(63, 64, 8, 0.1f).begin, 7);
  EXPECT_EQ(ops::attention_window(63, 64, 8, 0.1f).end, 8);
}

FALCON_INSTANTIATE_DEVICE_TESTS(WindowCrossAttentionTest);

}  // namespace
}  // namespace falcon
