// CPU attention. Visible keys always form a prefix [0, last] of the sequence, so a block of
// query rows of one head is a dense tile computation:
//   1. keys of the head transposed once to kt [hd, T] (keys contiguous), so scores for a
//      tile of 8 query rows x 2 vectors of keys accumulate with broadcasts and FMAs, no
//      horizontal sums;
//   2. masked softmax over each row with a vectorised exp (f32 polynomial, ~2 ulp);
//   3. p . v with 8 rows x one vector of head dims per register tile.
// Rows of one head stay on one thread while its transposed keys are hot in cache.
#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/attention.h"
#include "ops/simd_f32.h"

namespace falcon::ops::cpu {

namespace {

constexpr int64_t kRows = 8;  // query rows per register tile

// The last key a query at absolute position p sees: visible keys always form [0, last].
int64_t last_visible_key(int64_t p, const AttentionMask& m) {
  if (m.image_end > m.image_begin && p >= m.image_begin && p < m.image_end) return std::max(p, m.image_end - 1);
  return p;
}

// exp(x) for x <= 0 (softmax after subtracting the max): 2^n * poly(r), written so the
// compiler vectorises the loop that calls it.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  const float n = std::floor(x * 1.44269504f + 0.5f);
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

struct Geometry {
  int64_t S, H, hd, T, K, group;
  float scale;
};

// One row at a time: any head_dim (the tiled path needs whole vectors of head dims).
void attention_rows(const Geometry& g, const float* qd, const float* kd, const float* vd, const float* sink,
                    const AttentionMask& mask, float* od) {
  parallel_for(g.H * g.S, 4, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores(static_cast<size_t>(g.T));
    std::vector<float> acc(static_cast<size_t>(g.hd));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t h = w / g.S, i = w % g.S;
      const int64_t last = last_visible_key(mask.q_offset + i, mask);
      const float* qi = qd + (i * g.H + h) * g.hd;
      float m = -INFINITY;
      for (int64_t j = 0; j <= last; ++j) {
        scores[size_t(j)] = dot(qi, kd + (j * g.H + h) * g.hd, g.hd) * g.scale;
        m = std::max(m, scores[size_t(j)]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.f);
      const int64_t vh = h / g.group;
      for (int64_t j = 0; j <= last; ++j) {
        const float p = std::exp(scores[size_t(j)] - m);
        sum += p;
        const float* vj = vd + (j * g.K + vh) * g.hd;
#pragma omp simd
        for (int64_t c = 0; c < g.hd; ++c) acc[size_t(c)] += p * vj[c];
      }
      const double lse = double(m) + std::log(sum);
      const float f = float(1.0 / (1.0 + std::exp(-(lse - double(sink[h])))) / sum);
      float* oi = od + (i * g.H + h) * g.hd;
      for (int64_t c = 0; c < g.hd; ++c) oi[c] = acc[size_t(c)] * f;
    }
  });
}

void attention_tiled(const Geometry& g, const float* qd, const float* kd, const float* vd, const float* sink,
                     const AttentionMask& mask, float* od) {
  using namespace simd;
  constexpr int64_t L = kLanes;
  const int64_t t_pad = (g.T + 2 * L - 1) / (2 * L) * (2 * L);
  const int64_t blocks = (g.S + kRows - 1) / kRows;
  // Work items: (head, block of rows), heads outermost so a thread reuses one head's keys.
  parallel_for(g.H * blocks, 1, [&](int64_t w0, int64_t w1) {
    std::vector<float> kt, scores(static_cast<size_t>(kRows * t_pad));
    int64_t kt_head = -1;
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t h = w / blocks, i0 = (w % blocks) * kRows;
      const int64_t rows = std::min(kRows, g.S - i0);
      int64_t last[kRows];
      int64_t n_keys = 0;
      for (int64_t r = 0; r < kRows; ++r) {
        last[r] = r < rows ? last_visible_key(mask.q_offset + i0 + r, mask) : -1;
        n_keys = std::max(n_keys, last[r] + 1);
      }
      const int64_t n_pad = (n_keys + 2 * L - 1) / (2 * L) * (2 * L);
      if (kt_head != h) {  // kt[c][j] = k[j, h, c], zero past T
        kt.assign(static_cast<size_t>(g.hd * t_pad), 0.f);
        for (int64_t j = 0; j < g.T; ++j) {
          const float* kj = kd + (j * g.H + h) * g.hd;
          for (int64_t c = 0; c < g.hd; ++c) kt[size_t(c * t_pad + j)] = kj[c];
        }
        kt_head = h;
      }
      // Scaled queries of the tile (rows past the end read row 0 and are ignored).
      float q[kRows][256];
      for (int64_t r = 0; r < kRows; ++r) {
        const float* qi = qd + ((i0 + std::min(r, rows - 1)) * g.H + h) * g.hd;
        for (int64_t c = 0; c < g.hd; ++c) q[r][c] = qi[c] * g.scale;
      }
      // 1. scores[r][j] = q_r . k_j
      for (int64_t j = 0; j < n_pad; j += 2 * L) {
        VF acc0[kRows], acc1[kRows];
        for (int64_t r = 0; r < kRows; ++r) acc0[r] = acc1[r] = zero();
        for (int64_t c = 0; c < g.hd; ++c) {
          const VF k0 = load(&kt[size_t(c * t_pad + j)]);
          const VF k1 = load(&kt[size_t(c * t_pad + j + L)]);
          for (int64_t r = 0; r < kRows; ++r) {
            const VF qr = set1(q[r][c]);
            acc0[r] = fmadd(qr, k0, acc0[r]);
            acc1[r] = fmadd(qr, k1, acc1[r]);
          }
        }
        for (int64_t r = 0; r < kRows; ++r) {
          store(&scores[size_t(r * t_pad + j)], acc0[r]);
          store(&scores[size_t(r * t_pad + j + L)], acc1[r]);
        }
      }
      // 2. masked softmax per row: p = exp(s - max) over [0, last], 0 beyond.
      float inv_gate[kRows];
      for (int64_t r = 0; r < rows; ++r) {
        float* s = &scores[size_t(r * t_pad)];
        const int64_t n = last[r] + 1;
        float m = -INFINITY;
        for (int64_t j = 0; j < n; ++j) m = std::max(m, s[j]);
        float sum = 0.f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < n; ++j) {
          s[j] = exp_nonpositive(s[j] - m);
          sum += s[j];
        }
        for (int64_t j = n; j < n_pad; ++j) s[j] = 0.f;
        const double lse = double(m) + std::log(double(sum));
        // sigmoid(lse - sink) / sum: the sink is one more logit in the denominator.
        inv_gate[r] = float(1.0 / (1.0 + std::exp(-(lse - double(sink[h])))) / double(sum));
      }
      for (int64_t r = rows; r < kRows; ++r) {
        std::fill(&scores[size_t(r * t_pad)], &scores[size_t(r * t_pad + n_pad)], 0.f);
      }
      // 3. out[r] = sum_j p[r][j] v_j, one vector of head dims at a time.
      const int64_t vh = h / g.group;
      for (int64_t c = 0; c < g.hd; c += L) {
        VF acc[kRows];
        for (int64_t r = 0; r < kRows; ++r) acc[r] = zero();
        for (int64_t j = 0; j < n_keys; ++j) {
          const VF vj = load(vd + (j * g.K + vh) * g.hd + c);
          for (int64_t r = 0; r < kRows; ++r) acc[r] = fmadd(set1(scores[size_t(r * t_pad + j)]), vj, acc[r]);
        }
        for (int64_t r = 0; r < rows; ++r) {
          store(od + ((i0 + r) * g.H + h) * g.hd + c, mul(acc[r], set1(inv_gate[r])));
        }
      }
    }
  });
}

}  // namespace

// One query row (a decode step): keys split into chunks across threads, each chunk taking
// every head at once, so K and V stream through memory in their stored order ([T, H, hd]
// keys, [T, K, hd] values: one contiguous run per key) instead of one head's strided rows
// at a time. Each chunk keeps per-head (max, sum, p . v) partials; they are merged with
// the usual rescaling at the end.
void attention_one_row(const Geometry& g, const float* qd, const float* kd, const float* vd, const float* sink,
                       const AttentionMask& mask, float* od) {
  constexpr int64_t kChunk = 256;  // keys per work item: the chunk's scores for 16 heads are 16 KB
  const int64_t n = last_visible_key(mask.q_offset, mask) + 1;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t H = g.H, hd = g.hd;
  std::vector<float> part_max(size_t(chunks * H)), part_acc(size_t(chunks * H * hd));
  std::vector<double> part_sum(size_t(chunks * H));
  std::vector<float> q(size_t(H * hd));  // scaled queries
  for (int64_t i = 0; i < H * hd; ++i) q[size_t(i)] = qd[i] * g.scale;
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<float> scores(size_t(H * kChunk));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t j0 = c * kChunk, len = std::min(kChunk, n - j0);
      float* mx = part_max.data() + c * H;
      for (int64_t h = 0; h < H; ++h) mx[h] = -INFINITY;
      for (int64_t j = 0; j < len; ++j) {
        const float* kj = kd + (j0 + j) * H * hd;
        for (int64_t h = 0; h < H; ++h) {
          const float sc = dot(q.data() + h * hd, kj + h * hd, hd);
          scores[size_t(h * kChunk + j)] = sc;
          mx[h] = std::max(mx[h], sc);
        }
      }
      double* sum = part_sum.data() + c * H;
      float* acc = part_acc.data() + c * H * hd;
      for (int64_t h = 0; h < H; ++h) {
        float* sh = scores.data() + h * kChunk;
        const float m = mx[h];
        float s = 0.f;  // at most kChunk terms in [0, 1]: f32 keeps them to ~1e-7
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < len; ++j) {
          sh[j] = exp_nonpositive(sh[j] - m);
          s += sh[j];
        }
        sum[h] = s;
      }
      std::fill(acc, acc + H * hd, 0.f);
      for (int64_t j = 0; j < len; ++j) {
        const float* vj = vd + (j0 + j) * g.K * hd;
        for (int64_t h = 0; h < H; ++h) {
          const float p = scores[size_t(h * kChunk + j)];
          const float* vh = vj + (h / g.group) * hd;
          float* ah = acc + h * hd;
#pragma omp simd
          for (int64_t d = 0; d < hd; ++d) ah[d] += p * vh[d];
        }
      }
    }
  });
  // Merge the chunks: rescale each to the overall max, then the sink gate.
  for (int64_t h = 0; h < H; ++h) {
    float m = -INFINITY;
    for (int64_t c = 0; c < chunks; ++c) m = std::max(m, part_max[size_t(c * H + h)]);
    double sum = 0;
    float* oh = od + h * hd;
    std::fill(oh, oh + hd, 0.f);
    for (int64_t c = 0; c < chunks; ++c) {
      const float w = std::exp(part_max[size_t(c * H + h)] - m);
      sum += part_sum[size_t(c * H + h)] * double(w);
      const float* a = part_acc.data() + (c * H + h) * hd;
      for (int64_t d = 0; d < hd; ++d) oh[d] += w * a[d];
    }
    const double lse = double(m) + std::log(sum);
    const float f = float(1.0 / (1.0 + std::exp(-(lse - double(sink[h])))) / sum);
    for (int64_t d = 0; d < hd; ++d) oh[d] *= f;
  }
}

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks,
               const AttentionMask& mask, Tensor& out) {
  if (q.dtype() != DType::F32) throw Unsupported("attention (cpu): only F32 activations");
  Geometry g;
  g.S = q.dim(0), g.H = q.dim(1), g.hd = q.dim(2), g.T = k.dim(0), g.K = v.dim(1);
  g.group = g.H / g.K;
  g.scale = 1.0f / std::sqrt(float(g.hd));
  const bool tiled = simd::kLanes > 1 && g.hd % simd::kLanes == 0 && g.hd <= 256 && g.S >= kRows / 2;
  if (g.S == 1 && g.T >= 1024) {
    attention_one_row(g, q.data<float>(), k.data<float>(), v.data<float>(), sinks.data<float>(), mask,
                      out.data<float>());
  } else if (tiled) {
    attention_tiled(g, q.data<float>(), k.data<float>(), v.data<float>(), sinks.data<float>(), mask,
                    out.data<float>());
  } else {
    attention_rows(g, q.data<float>(), k.data<float>(), v.data<float>(), sinks.data<float>(), mask,
                   out.data<float>());
  }
}

}  // namespace falcon::ops::cpu
