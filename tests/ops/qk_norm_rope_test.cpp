#include "ops/qk_norm_rope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "test_support.h"

namespace falcon {
namespace {

class QkNormRopeTest : public ::testing::TestWithParam<Device> {};

// Rotation of one normalised head, written from MODEL.md in double precision.
void reference_head(const float* x, int64_t hd, double pos_t, double ph, double pw, const float* golden_h,
                    double theta, double eps, float* out) {
  double ss = 0;
  for (int64_t c = 0; c < hd; ++c) ss += double(x[c]) * x[c];
  const double inv = 1 / std::sqrt(ss / hd + eps);
  std::vector<double> n(static_cast<size_t>(hd));
  for (int64_t c = 0; c < hd; ++c) n[size_t(c)] = x[c] * inv;
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < hd / 4; ++i) {
    const double a = pos_t / std::pow(theta, 2.0 * double(i) / double(half));
    out[2 * i] = float(n[size_t(2 * i)] * std::cos(a) - n[size_t(2 * i + 1)] * std::sin(a));
    out[2 * i + 1] = float(n[size_t(2 * i)] * std::sin(a) + n[size_t(2 * i + 1)] * std::cos(a));
    const double b = ph * golden_h[2 * i] + pw * golden_h[2 * i + 1];
    out[half + 2 * i] = float(n[size_t(half + 2 * i)] * std::cos(b) - n[size_t(half + 2 * i + 1)] * std::sin(b));
    out[half + 2 * i + 1] = float(n[size_t(half + 2 * i)] * std::sin(b) + n[size_t(half + 2 * i + 1)] * std::cos(b));
  }
}

TEST_P(QkNormRopeTest, MatchesReference) {
  const Device dev = GetParam();
  const int64_t S = 11, H = 4, K = 2, hd = 32;
  const float theta = 10000.f, eps = 1.1920929e-7f;
  Tensor qkv = test::random_tensor({S, (H + 2 * K) * hd}, 3, -2, 2);
  Tensor golden = test::random_tensor({H, hd / 4, 2}, 4, -3, 3);
  Tensor pos_t = Tensor::empty({S}, DType::I32);
  Tensor pos_hw = Tensor::zeros({S, 2}, DType::F32);
  for (int64_t s = 0; s < S; ++s) {
    pos_t.data<int32_t>()[s] = int32_t(s < 3 ? s : 3 + (s > 8 ? s - 8 : 0)) * 37;  // large angles too
    if (s >= 3 && s <= 8) {  // image tokens get spatial positions
      pos_hw.data<float>()[2 * s] = -0.8f + 0.3f * float(s - 3);
      pos_hw.data<float>()[2 * s + 1] = 0.5f - 0.2f * float(s - 3);
    }
  }
  Tensor q = Tensor::empty({S, H, hd}, DType::F32, dev), k = Tensor::empty({S, H, hd}, DType::F32, dev);
  Tensor v = Tensor::empty({S, K, hd}, DType::F32, dev);
  ops::qk_norm_rope(qkv.to(dev), pos_t.to(dev), pos_hw.to(dev), golden.to(dev), theta, eps, q, k, v);
  Tensor want_q = Tensor::empty({S, H, hd}, DType::F32), want_k = Tensor::empty({S, H, hd}, DType::F32);
  Tensor want_v = Tensor::empty({S, K, hd}, DType::F32);
  const float* in = qkv.data<float>();
  const int64_t row = (H + 2 * K) * hd;
  for (int64_t s = 0; s < S; ++s) {
    const double pt = pos_t.data<int32_t>()[s], ph = pos_hw.data<float>()[2 * s], pw = pos_hw.data<float>()[2 * s + 1];
    for (int64_t h = 0; h < H; ++h) {
      const float* gh = golden.data<float>() + h * (hd / 4) * 2;
      reference_head(in + s * row + h * hd, hd, pt, ph, pw, gh, theta, eps, want_q.data<float>() + (s * H + h) * hd);
      reference_head(in + s * row + (H + h / (H / K)) * hd, hd, pt, ph, pw, gh, theta, eps,
                     want_k.data<float>() + (s * H + h) * hd);
    }
    for (int64_t c = 0; c < K * hd; ++c) want_v.data<float>()[s * K * hd + c] = in[s * row + (H + K) * hd + c];
  }
  EXPECT_LT(test::rel_l2(test::to_cpu_f32(q), want_q), 2e-6);
  EXPECT_LT(test::rel_l2(test::to_cpu_f32(k), want_k), 2e-6);
  EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(v), want_v), 0.0);
}

// The paged form writes what the contiguous form writes, row s's key and value at slot
// slots[s] of the pool, nothing for a negative slot, and leaves every other pool row alone.
TEST_P(QkNormRopeTest, PagedWritesEachRowAtItsSlot) {
  const Device dev = GetParam();
  const int64_t S = 6, H = 4, K = 2, hd = 32, blocks = 3, bs = 4;
  const float theta = 10000.f, eps = 1.1920929e-7f;
  Tensor qkv = test::random_tensor({S, (H + 2 * K) * hd}, 7, -2, 2);
  Tensor golden = test::random_tensor({H, hd / 4, 2}, 8, -3, 3);
  Tensor pos_t = Tensor::empty({S}, DType::I32), pos_hw = Tensor::zeros({S, 2}, DType::F32);
  Tensor slots = Tensor::empty({S}, DType::I32);
  const int32_t slot_of[S] = {9, 2, -1, 11, 0, 5};  // shuffled over blocks, one padding row
  for (int64_t s = 0; s < S; ++s) {
    pos_t.data<int32_t>()[s] = int32_t(40 + 3 * s);
    pos_hw.data<float>()[2 * s] = s % 2 ? 0.25f * float(s) : 0.f;  // spatial and text rows
    pos_hw.data<float>()[2 * s + 1] = s % 2 ? -0.5f : 0.f;
    slots.data<int32_t>()[s] = slot_of[s];
  }
  Tensor q = Tensor::empty({S, H, hd}, DType::F32, dev), k = Tensor::empty({S, H, hd}, DType::F32, dev);
  Tensor v = Tensor::empty({S, K, hd}, DType::F32, dev);
  ops::qk_norm_rope(qkv.to(dev), pos_t.to(dev), pos_hw.to(dev), golden.to(dev), theta, eps, q, k, v);

  Tensor kc_host = Tensor::empty({blocks, bs, H, hd}, DType::F32), vc_host = Tensor::empty({blocks, bs, K, hd}, DType::F32);
  std::fill(kc_host.data<float>(), kc_host.data<float>() + kc_host.numel(), 7.f);
  std::fill(vc_host.data<float>(), vc_host.data<float>() + vc_host.numel(), -7.f);
  Tensor kc = kc_host.to(dev), vc = vc_host.to(dev);
  Tensor qp = Tensor::empty({S, H, hd}, DType::F32, dev);
  ops::qk_norm_rope_paged(qkv.to(dev), pos_t.to(dev), pos_hw.to(dev), golden.to(dev), theta, eps, qp, slots.to(dev),
                          kc, vc);
  EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(qp), test::to_cpu_f32(q)), 0.0);

  // Expected pool: the sentinels, with each non-padding row's key and value at its slot.
  const Tensor kh = test::to_cpu_f32(k), vh = test::to_cpu_f32(v);
  for (int64_t s = 0; s < S; ++s) {
    if (slot_of[s] < 0) continue;
    std::copy(kh.data<float>() + s * H * hd, kh.data<float>() + (s + 1) * H * hd,
              kc_host.data<float>() + slot_of[s] * H * hd);
    std::copy(vh.data<float>() + s * K * hd, vh.data<float>() + (s + 1) * K * hd,
              vc_host.data<float>() + slot_of[s] * K * hd);
  }
  EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(kc), kc_host), 0.0);
  EXPECT_EQ(test::max_abs_diff(test::to_cpu_f32(vc), vc_host), 0.0);

  if (dev == Device::CPU) {  // a slot past the pool is an error on the CPU
    slots.data<int32_t>()[3] = int32_t(blocks * bs);
    EXPECT_THROW(ops::qk_norm_rope_paged(qkv, pos_t, pos_hw, golden, theta, eps, qp, slots, kc, vc),
                 InvalidArgument);
  }
}

TEST(RopeInvFreq, FollowsTheta) {
  EXPECT_FLOAT_EQ(ops::rope_inv_freq(10000.f, 64, 0), 1.f);
  EXPECT_NEAR(ops::rope_inv_freq(10000.f, 64, 16), 1e-2, 1e-7);  // theta^(-32/64)
}

FALCON_INSTANTIATE_DEVICE_TESTS(QkNormRopeTest);

}  // namespace
}  // namespace falcon
