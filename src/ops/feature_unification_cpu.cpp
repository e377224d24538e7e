#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu_gemm.h"
#include "ops/cpu_math.h"
#include "ops/feature_unification.h"

namespace falcon::ops::cpu {

// One output row at a time: for each input channel the O convolutions are a GEMM
// (O x k*k) x (k*k shifted views of the zero-padded row band), written to y[g*O + o, :];
// then the softmax over rows and mean over columns of the [O, c] grid, vectorised across
// the pixels of the row.
void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  const int64_t no = basis.dim(0), k = basis.dim(2), p = k / 2, taps = k * k;
  const int64_t wpad = w + 2 * p;
  const PackedA a =
      pack_a(no, taps, [&](int64_t o, int64_t t) { return basis.data<float>()[o * taps + t]; });
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  // Taps inside the image along one axis at position i of n.
  auto inside = [p](int64_t i, int64_t n) {
    return std::min(i + p, n - 1) - std::max<int64_t>(i - p, 0) + 1;
  };

  parallel_for(h, 1, [&](int64_t y0, int64_t y1) {
    std::vector<float> band(static_cast<size_t>(k * wpad));  // (k, Wp) padded rows of one channel
    std::vector<float> y(static_cast<size_t>(c * no * w));   // (c*O, w) normalised conv values
    std::vector<float> e(static_cast<size_t>(no * w));       // (O, w) exps of one grid column
    std::vector<float> acc(static_cast<size_t>(no * w));     // (O, w) sum of softmaxes
    std::vector<float> colmax(static_cast<size_t>(w)), colsum(static_cast<size_t>(w));
    std::vector<float> inv_denom(static_cast<size_t>(w));
    std::vector<int64_t> offsets(static_cast<size_t>(taps));
    for (int64_t t = 0; t < taps; ++t) offsets[size_t(t)] = (t / k) * wpad + t % k;
    for (int64_t row = y0; row < y1; ++row) {
      for (int64_t xx = 0; xx < w; ++xx)
        inv_denom[size_t(xx)] = 1.f / float(inside(row, h) * inside(xx, w));
      for (int64_t g = 0; g < c; ++g) {
        for (int64_t r = 0; r < k; ++r) {
          float* dst = band.data() + r * wpad;
          const int64_t sy = row + r - p;
          std::fill(dst, dst + wpad, 0.f);
          if (sy >= 0 && sy < h)
            std::copy(xp + (g * h + sy) * w, xp + (g * h + sy + 1) * w, dst + p);
        }
        float* yg = y.data() + g * no * w;
        gemm_columns(a, band.data(), offsets.data(), 0, w,
                     [&](const float* cv, int64_t n0, int64_t count) {
                       for (int64_t o = 0; o < no; ++o) {
                         for (int64_t j = 0; j < count; ++j)
                           yg[o * w + n0 + j] = cv[o * kGemmTileN + j] * inv_denom[size_t(n0 + j)];
                       }
                     });
      }
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t col = 0; col < c; ++col) {
        std::fill(colmax.begin(), colmax.end(), -3.4e38f);
        for (int64_t r = 0; r < no; ++r) {
          const float* v = y.data() + (r * c + col) * w;
          for (int64_t xx = 0; xx < w; ++xx)
            colmax[size_t(xx)] = std::max(colmax[size_t(xx)], v[xx]);
        }
        std::fill(colsum.begin(), colsum.end(), 0.f);
        for (int64_t r = 0; r < no; ++r) {
          const float* v = y.data() + (r * c + col) * w;
          float* er = e.data() + r * w;
          for (int64_t xx = 0; xx < w; ++xx) {
            er[xx] = exp_approx(v[xx] - colmax[size_t(xx)]);
            colsum[size_t(xx)] += er[xx];
          }
        }
        for (int64_t xx = 0; xx < w; ++xx) colsum[size_t(xx)] = 1.f / colsum[size_t(xx)];
        for (int64_t r = 0; r < no; ++r) {
          const float* er = e.data() + r * w;
          float* ar = acc.data() + r * w;
          for (int64_t xx = 0; xx < w; ++xx) ar[xx] += er[xx] * colsum[size_t(xx)];
        }
      }
      const float inv_c = 1.f / float(c);
      for (int64_t r = 0; r < no; ++r) {
        for (int64_t xx = 0; xx < w; ++xx)
          op[(r * h + row) * w + xx] = acc[size_t(r * w + xx)] * inv_c;
      }
    }
  });
}

}  // namespace falcon::ops::cpu
