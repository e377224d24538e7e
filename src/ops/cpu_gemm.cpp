#include "ops/cpu_gemm.h"

#include <algorithm>
#include <cstring>

#include "ops/cpu_math.h"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace falcon::ops::cpu {
namespace {

constexpr int kNR = kGemmTileN;
// Depth of one packed B panel: kKC x kNR floats (32 KiB) stays in L1 while every row block
// of A streams past it.
constexpr int64_t kKC = 256;
// Tiles of columns packed together (see gemm_columns): each row of B is then read as a
// 4 KiB run, which the hardware prefetchers follow even with 128+ rows in flight.
constexpr int64_t kChunk = 32;

// The register tile is kMR rows x kNR columns of C, accumulated over a panel of depth kc.
// Explicit FMA intrinsics: an ISO C++ build does not contract a*b+c into an FMA.
#if defined(__AVX512F__)
constexpr int kMR = 12;  // 24 accumulators of the 32 zmm registers

void micro_kernel(const float* ap, const float* bp, int64_t kc, float* c, bool load) {
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int m = 0; m < kMR; ++m) {
    acc[m][0] = load ? _mm512_loadu_ps(c + m * kNR) : _mm512_setzero_ps();
    acc[m][1] = load ? _mm512_loadu_ps(c + m * kNR + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(bp + k * kNR);
    const __m512 b1 = _mm512_load_ps(bp + k * kNR + 16);
#pragma GCC unroll 12
    for (int m = 0; m < kMR; ++m) {
      const __m512 a = _mm512_set1_ps(ap[k * kMR + m]);
      acc[m][0] = _mm512_fmadd_ps(a, b0, acc[m][0]);
      acc[m][1] = _mm512_fmadd_ps(a, b1, acc[m][1]);
    }
  }
#pragma GCC unroll 12
  for (int m = 0; m < kMR; ++m) {
    _mm512_storeu_ps(c + m * kNR, acc[m][0]);
    _mm512_storeu_ps(c + m * kNR + 16, acc[m][1]);
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kMR = 3;  // 12 accumulators of the 16 ymm registers

void micro_kernel(const float* ap, const float* bp, int64_t kc, float* c, bool load) {
  __m256 acc[kMR][4];
  for (int m = 0; m < kMR; ++m) {
    for (int j = 0; j < 4; ++j)
      acc[m][j] = load ? _mm256_loadu_ps(c + m * kNR + 8 * j) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int m = 0; m < kMR; ++m) {
      const __m256 a = _mm256_set1_ps(ap[k * kMR + m]);
      for (int j = 0; j < 4; ++j)
        acc[m][j] = _mm256_fmadd_ps(a, _mm256_load_ps(bp + k * kNR + 8 * j), acc[m][j]);
    }
  }
  for (int m = 0; m < kMR; ++m) {
    for (int j = 0; j < 4; ++j) _mm256_storeu_ps(c + m * kNR + 8 * j, acc[m][j]);
  }
}
#else
constexpr int kMR = 4;

void micro_kernel(const float* ap, const float* bp, int64_t kc, float* c, bool load) {
  float acc[kMR][kNR];
  for (int m = 0; m < kMR; ++m) {
    for (int j = 0; j < kNR; ++j) acc[m][j] = load ? c[m * kNR + j] : 0.f;
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int m = 0; m < kMR; ++m) {
      const float a = ap[k * kMR + m];
      for (int j = 0; j < kNR; ++j) acc[m][j] += a * bp[k * kNR + j];
    }
  }
  for (int m = 0; m < kMR; ++m) {
    for (int j = 0; j < kNR; ++j) c[m * kNR + j] = acc[m][j];
  }
}
#endif

}  // namespace

PackedA pack_a(int64_t m, int64_t k, const std::function<float(int64_t, int64_t)>& a) {
  PackedA p;
  p.m = m;
  p.k = k;
  p.m_blocks = (m + kMR - 1) / kMR;
  p.data.assign(size_t(p.m_blocks * k * kMR), 0.f);
  for (int64_t mb = 0; mb < p.m_blocks; ++mb) {
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t r = 0; r < kMR && mb * kMR + r < m; ++r) {
        p.data[size_t((mb * k + kk) * kMR + r)] = a(mb * kMR + r, kk);
      }
    }
  }
  return p;
}

void pack_a(PackedA& dst, const float* a, int64_t lda, int64_t m, int64_t k) {
  dst.m = m;
  dst.k = k;
  dst.m_blocks = (m + kMR - 1) / kMR;
  dst.data.resize(size_t(dst.m_blocks * k * kMR));
  for (int64_t mb = 0; mb < dst.m_blocks; ++mb) {
    float* block = dst.data.data() + mb * k * kMR;
    for (int64_t r = 0; r < kMR; ++r) {
      const int64_t row = mb * kMR + r;
      if (row < m) {
        const float* src = a + row * lda;
        for (int64_t kk = 0; kk < k; ++kk) block[kk * kMR + r] = src[kk];
      } else {
        for (int64_t kk = 0; kk < k; ++kk) block[kk * kMR + r] = 0.f;
      }
    }
  }
}

void pack_a_transposed(PackedA& dst, const float* at, int64_t lda, int64_t m, int64_t k) {
  dst.m = m;
  dst.k = k;
  dst.m_blocks = (m + kMR - 1) / kMR;
  dst.data.resize(size_t(dst.m_blocks * k * kMR));
  for (int64_t mb = 0; mb < dst.m_blocks; ++mb) {
    float* block = dst.data.data() + mb * k * kMR;
    const int64_t rows = std::min<int64_t>(kMR, m - mb * kMR);
    for (int64_t kk = 0; kk < k; ++kk) {
      const float* src = at + kk * lda + mb * kMR;
      float* d = block + kk * kMR;
      for (int64_t r = 0; r < rows; ++r) d[r] = src[r];
      for (int64_t r = rows; r < kMR; ++r) d[r] = 0.f;
    }
  }
}

void gemm_columns(const PackedA& a, const float* b_base, const int64_t* b_row_offset,
                  int64_t n_begin, int64_t n_end, const GemmTileFn& epilogue,
                  const RowTransform* transform) {
  const int64_t K = a.k;
  const int64_t c_tile = a.m_blocks * kMR * kNR;
  if (n_end <= n_begin) return;
  // 64-byte aligned scratch: up to kChunk panels of B (aligned loads) and their C tiles,
  // kept per thread (the window attention calls this thousands of times on small sizes).
  struct alignas(64) Line {
    float v[16];
  };
  const int64_t max_tiles = std::min<int64_t>(kChunk, (n_end - n_begin + kNR - 1) / kNR);
  thread_local std::vector<Line> panel_lines, c_lines;
  const size_t panel_need = size_t(max_tiles * std::min(kKC, std::max<int64_t>(K, 1)) * kNR / 16);
  const size_t c_need = size_t(std::max<int64_t>(1, max_tiles * c_tile / 16));
  if (panel_lines.size() < panel_need) panel_lines.resize(panel_need);
  if (c_lines.size() < c_need) c_lines.resize(c_need);
  float* bp = panel_lines.data()->v;
  float* c = c_lines.data()->v;
  const int64_t panel_stride =
      std::min(kKC, std::max<int64_t>(K, 1)) * kNR;  // floats per tile panel
  const float* scale = transform ? transform->scale : nullptr;
  const float* shift = transform ? transform->shift : nullptr;
  const bool silu = transform && transform->silu;
  // Columns go in chunks of kChunk tiles: each row of B is read as one longer contiguous
  // run (fewer pages touched per byte), then every tile's panel is multiplied while it is in L1.
  for (int64_t c0 = n_begin; c0 < n_end; c0 += kChunk * kNR) {
    const int64_t chunk_cols = std::min<int64_t>(kChunk * kNR, n_end - c0);
    const int64_t tiles = (chunk_cols + kNR - 1) / kNR;
    if (K == 0) std::fill(c, c + tiles * c_tile, 0.f);
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
      const int64_t kc = std::min(kKC, K - k0);
      for (int64_t kk = 0; kk < kc; ++kk) {
        const int64_t row = k0 + kk;
        const float* src = b_base + b_row_offset[row] + c0;
        for (int64_t t = 0; t < tiles; ++t) {
          float* dst = bp + t * panel_stride + kk * kNR;
          const int64_t count = std::min<int64_t>(kNR, chunk_cols - t * kNR);
          const float* s = src + t * kNR;
          if (transform) {
            const float sc = scale[row], sh = shift[row];
            if (silu) {
              for (int64_t j = 0; j < count; ++j) dst[j] = silu_approx(s[j] * sc + sh);
            } else {
              for (int64_t j = 0; j < count; ++j) dst[j] = s[j] * sc + sh;
            }
          } else {
            for (int64_t j = 0; j < count; ++j) dst[j] = s[j];
          }
          for (int64_t j = count; j < kNR; ++j) dst[j] = 0.f;
        }
      }
      for (int64_t t = 0; t < tiles; ++t) {
        for (int64_t mb = 0; mb < a.m_blocks; ++mb) {
          micro_kernel(a.data.data() + (mb * K + k0) * kMR, bp + t * panel_stride, kc,
                       c + t * c_tile + mb * kMR * kNR, k0 > 0);
        }
      }
    }
    for (int64_t t = 0; t < tiles; ++t) {
      epilogue(c + t * c_tile, c0 + t * kNR, std::min<int64_t>(kNR, chunk_cols - t * kNR));
    }
  }
}

}  // namespace falcon::ops::cpu
