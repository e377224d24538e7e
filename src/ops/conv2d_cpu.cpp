#include <algorithm>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/conv2d.h"
#include "ops/cpu_gemm.h"
#include "ops/cpu_moments.h"

namespace falcon::ops::cpu {
namespace {

// Source index of padded coordinate i (-p <= i < n + p) under torch's reflect padding.
int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// Band buffer budget: a band of padded input rows for every channel stays in L2/L3.
constexpr int64_t kBandBytes = int64_t(2) << 20;

}  // namespace

// A k x k convolution is a GEMM with K = k*k*Ci: row (tap, ci) of B is the padded input
// channel ci shifted by the tap. Output rows are computed in bands over the padded width Wp
// (the k-1 extra columns per row are discarded), so a row of B is a contiguous run of the
// band buffer and no im2col copy is made.
void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode,
            Tensor& out, bool accumulate, const Conv2dFusion& fusion) {
  const int64_t ci = x.dim(0), h = x.dim(1), wd = x.dim(2);
  const int64_t co = w.dim(0), k = w.dim(2), taps = k * k;
  const int64_t ho = out.dim(1), wo = out.dim(2);
  const int64_t p = padding;
  const float* wp = w.data<float>();
  const float* bp = bias ? bias->data<float>() : nullptr;
  // A[o, tap * Ci + i] = w[o, i, tap]
  const PackedA a = pack_a(co, taps * ci, [&](int64_t o, int64_t kk) {
    const int64_t tap = kk / ci, i = kk % ci;
    return wp[(o * ci + i) * taps + tap];
  });
  float* op = out.data<float>();
  const int64_t out_plane = ho * wo;
  auto write = [&](float* dst, float v, int64_t o) {
    v += bp ? bp[o] : 0.f;
    *dst = accumulate ? *dst + v : v;
  };

  if (k == 1 && p == 0) {
    // (Co, HW) = (Co, Ci) x (Ci, HW)
    const int64_t n = h * wd;
    std::vector<int64_t> offsets(static_cast<size_t>(ci));
    for (int64_t i = 0; i < ci; ++i) offsets[size_t(i)] = i * n;
    RowTransform transform;
    if (fusion.in_scale) {
      transform = {fusion.in_scale->data<float>(), fusion.in_shift->data<float>(), fusion.in_silu};
    }
    MomentsTotal moments(fusion.out_moments ? co : 0);
    std::mutex merge;
    const int64_t tiles = (n + kGemmTileN - 1) / kGemmTileN;
    parallel_for(tiles, 4, [&](int64_t t0, int64_t t1) {
      MomentsAccumulator acc(fusion.out_moments ? co : 0);
      gemm_columns(
          a, x.data<float>(), offsets.data(), t0 * kGemmTileN, std::min(n, t1 * kGemmTileN),
          [&](const float* c, int64_t n0, int64_t count) {
            for (int64_t o = 0; o < co; ++o) {
              float* dst = op + o * n + n0;
              const float* src = c + o * kGemmTileN;
              const float b = bp ? bp[o] : 0.f;
              if (accumulate) {
                for (int64_t j = 0; j < count; ++j) dst[j] += src[j] + b;
              } else {
                for (int64_t j = 0; j < count; ++j) dst[j] = src[j] + b;
              }
              if (fusion.out_moments) acc.add(o, dst, count);
            }
            if (fusion.out_moments) acc.row_done();
          },
          fusion.in_scale ? &transform : nullptr);
      if (fusion.out_moments) {
        std::lock_guard<std::mutex> lock(merge);
        moments.merge(acc);
      }
    });
    if (fusion.out_moments) moments.write(fusion.out_moments->data<float>());
    return;
  }

  const int64_t wpad = wd + 2 * p;
  int64_t band = std::max<int64_t>(1, kBandBytes / int64_t(sizeof(float) * ci * wpad) - (k - 1));
  band = std::min(band, (ho + num_threads() - 1) / num_threads());
  const int64_t bands = (ho + band - 1) / band;
  const float* xp = x.data<float>();
  parallel_for(bands, 1, [&](int64_t b0, int64_t b1) {
    const int64_t rows_in_max = band + k - 1;
    std::vector<float> buf(static_cast<size_t>(ci * rows_in_max * wpad));
    std::vector<int64_t> offsets(static_cast<size_t>(taps * ci));
    for (int64_t tap = 0; tap < taps; ++tap) {
      for (int64_t i = 0; i < ci; ++i) {
        offsets[size_t(tap * ci + i)] = i * rows_in_max * wpad + (tap / k) * wpad + tap % k;
      }
    }
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t y0 = b * band, rows = std::min(band, ho - y0), rows_in = rows + k - 1;
      // (Ci, rows_in, Wp): input rows y0 - p ... of the padded image
      for (int64_t i = 0; i < ci; ++i) {
        for (int64_t r = 0; r < rows_in; ++r) {
          float* dst = buf.data() + (i * rows_in_max + r) * wpad;
          int64_t sy = y0 + r - p;
          if (mode == PadMode::Reflect) sy = reflect(sy, h);
          if (sy < 0 || sy >= h) {
            std::fill(dst, dst + wpad, 0.f);
            continue;
          }
          const float* src = xp + (i * h + sy) * wd;
          for (int64_t c = 0; c < p; ++c)
            dst[c] = mode == PadMode::Reflect ? src[reflect(c - p, wd)] : 0.f;
          std::copy(src, src + wd, dst + p);
          for (int64_t c = wd + p; c < wpad; ++c)
            dst[c] = mode == PadMode::Reflect ? src[reflect(c - p, wd)] : 0.f;
        }
      }
      // Columns n = r * Wp + c of the band; c >= Wo are the discarded wrap-around columns.
      const int64_t n = (rows - 1) * wpad + wo;
      gemm_columns(a, buf.data(), offsets.data(), 0, n,
                   [&](const float* c, int64_t n0, int64_t count) {
                     int64_t cols[kGemmTileN], dst_index[kGemmTileN], kept = 0;
                     for (int64_t j = 0; j < count; ++j) {
                       const int64_t r = (n0 + j) / wpad, col = (n0 + j) % wpad;
                       if (col >= wo) continue;
                       cols[kept] = j;
                       dst_index[kept++] = (y0 + r) * wo + col;
                     }
                     for (int64_t o = 0; o < co; ++o) {
                       float* dst = op + o * out_plane;
                       for (int64_t t = 0; t < kept; ++t)
                         write(dst + dst_index[t], c[o * kGemmTileN + cols[t]], o);
                     }
                   });
    }
  });
}

}  // namespace falcon::ops::cpu
