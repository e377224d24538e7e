#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/grid_rope.h"

namespace falcon::ops::cpu {
namespace {

// torch.linspace(0, 1, n) in float: the first half counts up from 0, the second half down
// from 1 (torch's symmetric evaluation).
float linspace01(int64_t i, int64_t n) {
  if (n == 1) return 0.f;
  const float step = 1.f / float(n - 1);
  return i < n / 2 ? step * float(i) : 1.f - step * float(n - 1 - i);
}

}  // namespace

// cos(a + b) and sin(a + b) from per-row and per-column tables (angle addition), so the
// image costs multiplies instead of 2 * C * H * W trigonometric calls.
void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2), half = c / 2;
  const float* f = freqs.data<float>();
  // (C, H) and (C, W) tables of cos / sin of u * freqs[0] and v * freqs[1]
  std::vector<float> cr(static_cast<size_t>(c * h)), sr(static_cast<size_t>(c * h));
  std::vector<float> cc(static_cast<size_t>(c * w)), sc(static_cast<size_t>(c * w));
  for (int64_t j = 0; j < c; ++j) {
    for (int64_t r = 0; r < h; ++r) {
      const double a = double(linspace01(r, h)) * f[j];
      cr[size_t(j * h + r)] = float(std::cos(a));
      sr[size_t(j * h + r)] = float(std::sin(a));
    }
    for (int64_t col = 0; col < w; ++col) {
      const double a = double(linspace01(col, w)) * f[c + j];
      cc[size_t(j * w + col)] = float(std::cos(a));
      sc[size_t(j * w + col)] = float(std::sin(a));
    }
  }
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  // Channels j and j + C/2 rotate into each other: handle the pair together (in place safe).
  parallel_for(half * h, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j = t / h, r = t % h, k = j + half;
      const float* x1 = xp + (j * h + r) * w;
      const float* x2 = xp + (k * h + r) * w;
      float* o1 = op + (j * h + r) * w;
      float* o2 = op + (k * h + r) * w;
      const float cr1 = cr[size_t(j * h + r)], sr1 = sr[size_t(j * h + r)];
      const float cr2 = cr[size_t(k * h + r)], sr2 = sr[size_t(k * h + r)];
      const float* cc1 = cc.data() + j * w;
      const float* sc1 = sc.data() + j * w;
      const float* cc2 = cc.data() + k * w;
      const float* sc2 = sc.data() + k * w;
      for (int64_t col = 0; col < w; ++col) {
        const float cos1 = cr1 * cc1[col] - sr1 * sc1[col], sin1 = sr1 * cc1[col] + cr1 * sc1[col];
        const float cos2 = cr2 * cc2[col] - sr2 * sc2[col], sin2 = sr2 * cc2[col] + cr2 * sc2[col];
        const float a = x1[col], b = x2[col];
        o1[col] = a * cos1 - b * sin1;
        o2[col] = b * cos2 + a * sin2;
      }
    }
  });
}

}  // namespace falcon::ops::cpu
