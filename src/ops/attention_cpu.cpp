#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/attention.h"

namespace falcon::ops::cpu {

namespace {

// The last key a query at absolute position p sees: visible keys always form [0, last].
int64_t last_visible_key(int64_t p, const AttentionMask& m) {
  if (m.image_end > m.image_begin && p >= m.image_begin && p < m.image_end) return std::max(p, m.image_end - 1);
  return p;
}

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

}  // namespace

void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks,
               const AttentionMask& mask, Tensor& out) {
  if (q.dtype() != DType::F32) throw Unsupported("attention (cpu): only F32 activations");
  const int64_t S = q.dim(0), H = q.dim(1), hd = q.dim(2), T = k.dim(0), K = v.dim(1);
  const int64_t group = H / K;
  const float scale = 1.0f / std::sqrt(float(hd));
  const float* qd = q.data<float>();
  const float* kd = k.data<float>();
  const float* vd = v.data<float>();
  const float* sink = sinks.data<float>();
  float* od = out.data<float>();

  // Work items: (head, query row). Rows of one head are adjacent so a thread keeps that
  // head's keys in cache.
  parallel_for(H * S, 4, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores(static_cast<size_t>(T));
    std::vector<float> acc(static_cast<size_t>(hd));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t h = w / S, i = w % S;
      const int64_t last = last_visible_key(mask.q_offset + i, mask);
      const float* qi = qd + (i * H + h) * hd;
      float m = -INFINITY;
      for (int64_t j = 0; j <= last; ++j) {
        const float s = dot(qi, kd + (j * H + h) * hd, hd) * scale;
        scores[size_t(j)] = s;
        m = std::max(m, s);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.f);
      const int64_t vh = h / group;
      for (int64_t j = 0; j <= last; ++j) {
        const float p = std::exp(scores[size_t(j)] - m);
        sum += p;
        const float* vj = vd + (j * K + vh) * hd;
#pragma omp simd
        for (int64_t c = 0; c < hd; ++c) acc[size_t(c)] += p * vj[c];
      }
      const double lse = double(m) + std::log(sum);
      // sigmoid(lse - sink): the sink is one more logit in the softmax denominator.
      const double gate = 1.0 / (1.0 + std::exp(-(lse - double(sink[h]))));
      const float f = float(gate / sum);
      float* oi = od + (i * H + h) * hd;
      for (int64_t c = 0; c < hd; ++c) oi[c] = acc[size_t(c)] * f;
    }
  });
}

}  // namespace falcon::ops::cpu
