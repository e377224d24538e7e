#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/channel_norm.h"

namespace falcon::ops::cpu {
namespace {

constexpr int64_t kPixelBlock = 256;

// For each block of pixels: ss = sum_c x[c, p]^2 (vectorised across pixels), then
// out[c, p] = x[c, p] * factor(ss) * (weight ? weight[c] : 1).
template <typename Factor>
void scale_by_channel_norm(const Tensor& x, const float* weight, Tensor& out, Factor factor) {
  const int64_t c = x.dim(0), n = c ? x.numel() / c : 0;
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  parallel_for((n + kPixelBlock - 1) / kPixelBlock, 1, [&](int64_t b0, int64_t b1) {
    float ss[kPixelBlock];
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t p0 = b * kPixelBlock, len = std::min(kPixelBlock, n - p0);
      std::fill(ss, ss + len, 0.f);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* src = xp + ch * n + p0;
        for (int64_t j = 0; j < len; ++j) ss[j] += src[j] * src[j];
      }
      for (int64_t j = 0; j < len; ++j) ss[j] = factor(ss[j]);
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* src = xp + ch * n + p0;
        float* dst = op + ch * n + p0;
        const float wc = weight ? weight[ch] : 1.f;
        for (int64_t j = 0; j < len; ++j) dst[j] = src[j] * ss[j] * wc;
      }
    }
  });
}

}  // namespace

void channel_l2_normalize(const Tensor& x, float eps, Tensor& out) {
  scale_by_channel_norm(x, nullptr, out,
                        [eps](float ss) { return 1.f / std::max(std::sqrt(ss), eps); });
}

void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  const float inv_c = 1.f / float(x.dim(0));
  scale_by_channel_norm(x, weight.data<float>(), out,
                        [eps, inv_c](float ss) { return 1.f / std::sqrt(ss * inv_c + eps); });
}

}  // namespace falcon::ops::cpu
