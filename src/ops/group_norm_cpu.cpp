#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu_math.h"
#include "ops/group_norm.h"

namespace falcon::ops::cpu {

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps, bool silu,
                Tensor& out) {
  const int64_t c = x.dim(0);
  const int64_t n = c ? x.numel() / c : 0;  // pixels per channel
  const int64_t per_group = c / groups;
  const float* xp = x.data<float>();
  float* op = out.data<float>();

  // Per-channel sums in double, shifted by the channel's first value so that a large mean
  // does not cancel the variance.
  std::vector<double> sum(static_cast<size_t>(c)), sq(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  parallel_for(c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float* row = xp + ch * n;
      const float s0 = n ? row[0] : 0.f;
      double s = 0, q = 0;
      // 16 float lanes per block of 1024 keep the loop vectorised (no reassociation needed);
      // the blocks are short enough that float accumulation loses nothing at 1e-7.
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
      sum[size_t(ch)] = s;
      sq[size_t(ch)] = q;
      shift[size_t(ch)] = s0;
    }
  });

  // Per-channel scale and shift: out = x * a[c] + b[c].
  std::vector<float> a(static_cast<size_t>(c)), b(static_cast<size_t>(c));
  const double count = double(per_group) * double(n);
  for (int g = 0; g < groups; ++g) {
    // Combine the channels' shifted sums around a common reference (the group's first shift).
    const double ref = shift[size_t(g * per_group)];
    double s = 0, q = 0;
    for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
      const double delta = shift[size_t(ch)] - ref;  // x - ref = (x - shift) + delta
      s += sum[size_t(ch)] + delta * double(n);
      q += sq[size_t(ch)] + 2 * delta * sum[size_t(ch)] + delta * delta * double(n);
    }
    const double mean = s / count;
    const double var = std::max(0.0, q / count - mean * mean);
    const double inv = 1.0 / std::sqrt(var + double(eps));
    for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
      const double w = weight.data<float>()[ch];
      a[size_t(ch)] = float(inv * w);
      b[size_t(ch)] = float(bias.data<float>()[ch] - (ref + mean) * inv * w);
    }
  }

  const int64_t chunk = 1 << 14;
  const int64_t chunks_per_channel = (n + chunk - 1) / chunk;
  parallel_for(c * chunks_per_channel, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / chunks_per_channel;
      const int64_t i0 = (t % chunks_per_channel) * chunk, i1 = std::min(n, i0 + chunk);
      const float* src = xp + ch * n;
      float* dst = op + ch * n;
      const float ac = a[size_t(ch)], bc = b[size_t(ch)];
      if (silu) {
        for (int64_t i = i0; i < i1; ++i) dst[i] = silu_approx(src[i] * ac + bc);
      } else {
        for (int64_t i = i0; i < i1; ++i) dst[i] = src[i] * ac + bc;
      }
    }
  });
}

}  // namespace falcon::ops::cpu
