#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/channel_affine.h"
#include "ops/group_norm.h"

namespace falcon::ops::cpu {

void channel_moments(const Tensor& x, Tensor& moments) {
  const int64_t c = x.dim(0);
  const int64_t n = c ? x.numel() / c : 0;  // pixels per channel
  const float* xp = x.data<float>();
  float* mp = moments.data<float>();
  parallel_for(c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float* row = xp + ch * n;
      // Sums around the channel's first value, so a large mean does not cancel the variance;
      // 16 float lanes per block of 1024 keep the loop vectorised, blocks go to double.
      const float s0 = n ? row[0] : 0.f;
      double s = 0, q = 0;
      constexpr int64_t kLanes = 16, kBlock = 1024;
      int64_t i = 0;
      for (; i + kBlock <= n; i += kBlock) {
        float ls[kLanes] = {}, lq[kLanes] = {};
        for (int64_t j = 0; j < kBlock; j += kLanes) {
          for (int64_t l = 0; l < kLanes; ++l) {
            const float d = row[i + j + l] - s0;
            ls[l] += d;
            lq[l] += d * d;
          }
        }
        for (int64_t l = 0; l < kLanes; ++l) {
          s += ls[l];
          q += lq[l];
        }
      }
      for (; i < n; ++i) {
        const double d = double(row[i]) - s0;
        s += d;
        q += d * d;
      }
      const double mean = n ? s / double(n) : 0.0;
      mp[2 * ch] = float(s0 + mean);
      mp[2 * ch + 1] = n ? float(std::max(0.0, q / double(n) - mean * mean)) : 0.f;
    }
  });
}

void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups,
                       float eps, Tensor& scale, Tensor& shift) {
  const int64_t c = moments.dim(0), per_group = c / groups;
  const float* m = moments.data<float>();
  for (int g = 0; g < groups; ++g) {
    // Equal counts per channel: the group mean is the mean of channel means, the group
    // variance the mean of (channel variance + squared offset of the channel mean).
    double mean = 0;
    for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) mean += m[2 * ch];
    mean /= double(per_group);
    double var = 0;
    for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
      const double d = double(m[2 * ch]) - mean;
      var += double(m[2 * ch + 1]) + d * d;
    }
    var /= double(per_group);
    const double inv = 1.0 / std::sqrt(var + double(eps));
    for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
      const double w = weight.data<float>()[ch];
      scale.data<float>()[ch] = float(inv * w);
      shift.data<float>()[ch] = float(bias.data<float>()[ch] - mean * inv * w);
    }
  }
}

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps,
                bool silu, Tensor& out) {
  const int64_t c = x.dim(0);
  Tensor moments = Tensor::empty({c, 2}, DType::F32);
  Tensor scale = Tensor::empty({c}, DType::F32), shift = Tensor::empty({c}, DType::F32);
  channel_moments(x, moments);
  group_norm_affine(moments, weight, bias, groups, eps, scale, shift);
  channel_affine(x, scale, shift, out, silu);
}

}  // namespace falcon::ops::cpu
