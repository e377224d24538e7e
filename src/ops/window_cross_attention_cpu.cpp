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

struct Scratch {
  std::vector<float> q;       // (nq, dq)
  std::vector<float> kt;      // (dq, nk)  keys of the window union, transposed
  std::vector<float> vw;      // (nk, dv)
  std::vector<float> p;       // (nq, nk)  scores, then unnormalised probabilities
  std::vector<float> inv_sum;  // (nq)
  std::vector<int64_t> offsets;
  PackedA a;
};

}  // namespace

void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float ratio, float scale,
                            Tensor& out) {
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
      s.q.resize(size_t(nq * dq));
      s.kt.resize(size_t(dq * nk));
      s.vw.resize(size_t(nk * dv));
      s.p.resize(size_t(nq * nk));
      s.inv_sum.resize(size_t(nq));
      for (int64_t hd = 0; hd < heads; ++hd) {
        // Gather the head's queries (nq, dq), keys (dq, nk) and values (nk, dv).
        for (int64_t d = 0; d < dq; ++d) {
          const float* src = qp + (hd * dq + d) * qplane;
          for (int64_t y = ya; y < yb; ++y) {
            for (int64_t x = xa; x < xb; ++x) s.q[size_t(((y - ya) * nx + x - xa) * dq + d)] = src[y * W + x];
          }
          const float* ks = kp + (hd * dq + d) * kplane;
          for (int64_t r = r0; r < r1; ++r) {
            std::copy(ks + r * w + c0, ks + r * w + c1, s.kt.data() + d * nk + (r - r0) * nc);
          }
        }
        for (int64_t e = 0; e < dv; ++e) {
          const float* vs = vp + (hd * dv + e) * kplane;
          for (int64_t r = r0; r < r1; ++r) {
            for (int64_t c = c0; c < c1; ++c) s.vw[size_t(((r - r0) * nc + c - c0) * dv + e)] = vs[r * w + c];
          }
        }

        // Scores (nq, nk) = scale * Q K^T over the union.
        pack_a(s.a, s.q.data(), dq, nq, dq);
        s.offsets.resize(size_t(std::max(dq, nk)));
        for (int64_t d = 0; d < dq; ++d) s.offsets[size_t(d)] = d * nk;
        gemm_columns(s.a, s.kt.data(), s.offsets.data(), 0, nk, [&](const float* c, int64_t n0, int64_t count) {
          for (int64_t i = 0; i < nq; ++i) {
            for (int64_t j = 0; j < count; ++j) s.p[size_t(i * nk + n0 + j)] = c[i * kGemmTileN + j] * scale;
          }
        });

        // Softmax over each query's own window; cells of the union outside it get 0.
        for (int64_t i = 0; i < nq; ++i) {
          const KeyWindow wr = rows[size_t(ya + i / nx)], wc = cols[size_t(xa + i % nx)];
          float* pr = s.p.data() + i * nk;
          float mx = -3.4e38f;
          for (int64_t r = wr.begin; r < wr.end; ++r) {
            const float* cell = pr + (r - r0) * nc - c0;
            for (int64_t c = wc.begin; c < wc.end; ++c) mx = std::max(mx, cell[c]);
          }
          float sum = 0.f;
          for (int64_t r = r0; r < r1; ++r) {
            float* cell = pr + (r - r0) * nc - c0;
            if (r < wr.begin || r >= wr.end) {
              std::fill(cell + c0, cell + c1, 0.f);
              continue;
            }
            std::fill(cell + c0, cell + wc.begin, 0.f);
            for (int64_t c = wc.begin; c < wc.end; ++c) {
              cell[c] = exp_approx(cell[c] - mx);
              sum += cell[c];
            }
            std::fill(cell + wc.end, cell + c1, 0.f);
          }
          s.inv_sum[size_t(i)] = 1.f / sum;
        }

        // Output (nq, dv) = P V, normalised and scattered to the [C, H, W] output.
        pack_a(s.a, s.p.data(), nk, nq, nk);
        for (int64_t j = 0; j < nk; ++j) s.offsets[size_t(j)] = j * dv;
        gemm_columns(s.a, s.vw.data(), s.offsets.data(), 0, dv, [&](const float* c, int64_t n0, int64_t count) {
          for (int64_t j = 0; j < count; ++j) {
            float* dst = op + (hd * dv + n0 + j) * oplane;
            for (int64_t i = 0; i < nq; ++i) {
              dst[(ya + i / nx) * Wo + xa + i % nx] = c[i * kGemmTileN + j] * s.inv_sum[size_t(i)];
            }
          }
        });
      }
    }
  });
}

}  // namespace falcon::ops::cpu
