#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "ops/cpu_gemm.h"
#include "ops/cpu_math.h"
#include "ops/window_cross_attention.h"

namespace falcon::ops::cpu {
namespace {

// A tile of kTileY x kTileX queries: neighbouring queries have nearly the same window, so
// the union stays close to one window and the two GEMMs per head stay dense.
constexpr int64_t kTileY = 8, kTileX = 16;

// Everything is kept transposed (keys / values by rows of the [C, h, w] inputs, queries as
// columns) so that gathers are row copies and the softmax runs across queries, vectorised.
// Short row copies (16-30 floats): an inline loop beats a memmove call at this length.
inline void copy_row(const float* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

struct Scratch {
  std::vector<float> qt;                // (dq, nq)   queries of the tile
  std::vector<float> kt;                // (dq, nk)   keys of the window union
  std::vector<float> vt;                // (dv, nk)   values of the window union
  std::vector<float> st;                // (nk, nq)   scores, then unnormalised probabilities
  std::vector<float> mx, inv_sum;       // (nq)
  std::vector<int32_t> rb, re, cb, ce;  // (nq) each query's window in union coordinates
  std::vector<int64_t> offsets;
  PackedA a;
};

}  // namespace

void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            float ratio, float scale, Tensor& out) {
  const int64_t H = q.dim(1), W = q.dim(2), h = k.dim(1), w = k.dim(2);
  const int64_t dq = q.dim(0) / heads, dv = v.dim(0) / heads;
  const int64_t Ho = out.dim(1), Wo = out.dim(2);
  const int64_t qplane = H * W, kplane = h * w, oplane = Ho * Wo;
  std::vector<KeyWindow> rows(static_cast<size_t>(H)), cols(static_cast<size_t>(W));
  for (int64_t y = 0; y < H; ++y) rows[size_t(y)] = attention_window(y, H, h, ratio);
  for (int64_t x = 0; x < W; ++x) cols[size_t(x)] = attention_window(x, W, w, ratio);
  const float* qp = q.data<float>();
  const float* kp = k.data<float>();
  const float* vp = v.data<float>();
  float* op = out.data<float>();
  const int64_t tiles_y = (Ho + kTileY - 1) / kTileY, tiles_x = (Wo + kTileX - 1) / kTileX;

  parallel_for(tiles_y * tiles_x, 1, [&](int64_t t0, int64_t t1) {
    Scratch s;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ya = (t / tiles_x) * kTileY, yb = std::min(Ho, ya + kTileY);
      const int64_t xa = (t % tiles_x) * kTileX, xb = std::min(Wo, xa + kTileX);
      const int64_t nx = xb - xa, nq = (yb - ya) * nx;
      // Windows grow monotonically with the query position: the union is first to last.
      const int64_t r0 = rows[size_t(ya)].begin, r1 = rows[size_t(yb - 1)].end;
      const int64_t c0 = cols[size_t(xa)].begin, c1 = cols[size_t(xb - 1)].end;
      const int64_t nc = c1 - c0, nk = (r1 - r0) * nc;
      s.qt.resize(size_t(dq * nq));
      s.kt.resize(size_t(dq * nk));
      s.vt.resize(size_t(dv * nk));
      s.st.resize(size_t(nk * nq));
      s.mx.resize(size_t(nq));
      s.inv_sum.resize(size_t(nq));
      s.rb.resize(size_t(nq));
      s.re.resize(size_t(nq));
      s.cb.resize(size_t(nq));
      s.ce.resize(size_t(nq));
      s.offsets.resize(size_t(std::max(dq, nk)));
      for (int64_t i = 0; i < nq; ++i) {
        const KeyWindow wr = rows[size_t(ya + i / nx)], wc = cols[size_t(xa + i % nx)];
        s.rb[size_t(i)] = int32_t(wr.begin - r0);
        s.re[size_t(i)] = int32_t(wr.end - r0);
        s.cb[size_t(i)] = int32_t(wc.begin - c0);
        s.ce[size_t(i)] = int32_t(wc.end - c0);
      }
      for (int64_t hd = 0; hd < heads; ++hd) {
        // Gather the head's queries (dq, nq), keys (dq, nk) and values (dv, nk): row copies.
        for (int64_t d = 0; d < dq; ++d) {
          const float* src = qp + (hd * dq + d) * qplane;
          for (int64_t y = ya; y < yb; ++y) {
            copy_row(src + y * W + xa, nx, s.qt.data() + d * nq + (y - ya) * nx);
          }
          const float* ks = kp + (hd * dq + d) * kplane;
          for (int64_t r = r0; r < r1; ++r) {
            copy_row(ks + r * w + c0, nc, s.kt.data() + d * nk + (r - r0) * nc);
          }
        }
        for (int64_t e = 0; e < dv; ++e) {
          const float* vs = vp + (hd * dv + e) * kplane;
          for (int64_t r = r0; r < r1; ++r) {
            copy_row(vs + r * w + c0, nc, s.vt.data() + e * nk + (r - r0) * nc);
          }
        }

        // Scores (nk, nq) = K Q^T over the union.
        pack_a_transposed(s.a, s.kt.data(), nk, nk, dq);
        for (int64_t d = 0; d < dq; ++d) s.offsets[size_t(d)] = d * nq;
        gemm_columns(s.a, s.qt.data(), s.offsets.data(), 0, nq,
                     [&](const float* c, int64_t n0, int64_t count) {
                       for (int64_t j = 0; j < nk; ++j) {
                         copy_row(c + j * kGemmTileN, count, s.st.data() + j * nq + n0);
                       }
                     });

        // Softmax of scale * score over each query's own window, across the queries of a
        // key row at a time; cells of the union outside the window become 0.
        const int32_t *rb = s.rb.data(), *re = s.re.data(), *cb = s.cb.data(), *ce = s.ce.data();
        float* mx = s.mx.data();
        std::fill(mx, mx + nq, -3.4e38f);
        for (int64_t j = 0; j < nk; ++j) {
          const int32_t kr = int32_t(j / nc), kc = int32_t(j % nc);
          const float* sr = s.st.data() + j * nq;
          for (int64_t i = 0; i < nq; ++i) {
            const bool in = (kr >= rb[i]) & (kr < re[i]) & (kc >= cb[i]) &
                            (kc < ce[i]);  // no branches: vectorises
            mx[i] = in ? std::max(mx[i], sr[i]) : mx[i];
          }
        }
        float* sum = s.inv_sum.data();
        std::fill(sum, sum + nq, 0.f);
        for (int64_t j = 0; j < nk; ++j) {
          const int32_t kr = int32_t(j / nc), kc = int32_t(j % nc);
          float* sr = s.st.data() + j * nq;
          for (int64_t i = 0; i < nq; ++i) {
            const bool in = (kr >= rb[i]) & (kr < re[i]) & (kc >= cb[i]) &
                            (kc < ce[i]);  // no branches: vectorises
            const float e = exp_approx((sr[i] - mx[i]) * scale);
            sr[i] = in ? e : 0.f;
            sum[i] += sr[i];
          }
        }
        for (int64_t i = 0; i < nq; ++i) sum[i] = 1.f / sum[i];

        // Output (dv, nq) = V^T P, normalised and written to the [C, Ho, Wo] output.
        pack_a(s.a, s.vt.data(), nk, dv, nk);
        for (int64_t j = 0; j < nk; ++j) s.offsets[size_t(j)] = j * nq;
        gemm_columns(s.a, s.st.data(), s.offsets.data(), 0, nq,
                     [&](const float* c, int64_t n0, int64_t count) {
                       for (int64_t e = 0; e < dv; ++e) {
                         float* dst = op + (hd * dv + e) * oplane;
                         const float* src = c + e * kGemmTileN;
                         for (int64_t jj = 0; jj < count;) {
                           // A run of queries on one output row.
                           const int64_t i = n0 + jj, y = ya + i / nx, x = xa + i % nx;
                           const int64_t run = std::min(count - jj, xb - x);
                           for (int64_t u = 0; u < run; ++u)
                             dst[y * Wo + x + u] = src[jj + u] * sum[i + u];
                           jj += run;
                         }
                       }
                     });
      }
    }
  });
}

}  // namespace falcon::ops::cpu
