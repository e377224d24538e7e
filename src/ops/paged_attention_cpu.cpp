// Paged KV cache on the CPU: a scalar, threaded version of the contract (F32). Work items are
// (sequence, head) pairs; each walks its sequence's blocks through the block table.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/paged_attention.h"

namespace falcon::ops::cpu {

void paged_kv_write(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache, Tensor& v_cache) {
  if (k.dtype() != DType::F32) throw Unsupported("paged_kv_write (cpu): only F32");
  const int64_t N = slots.dim(0), H = k_cache.dim(2), K = v_cache.dim(2), hd = k_cache.dim(3);
  const int64_t capacity = k_cache.dim(0) * k_cache.dim(1);
  const int32_t* sl = slots.data<int32_t>();
  for (int64_t n = 0; n < N; ++n) {
    if (sl[n] >= capacity) {
      throw InvalidArgument("paged_kv_write: slot " + std::to_string(sl[n]) + " outside a pool of " +
                            std::to_string(capacity) + " rows");
    }
  }
  const size_t k_row = size_t(H * hd), v_row = size_t(K * hd);
  for (int64_t n = 0; n < N; ++n) {
    if (sl[n] < 0) continue;
    std::memcpy(k_cache.data<float>() + size_t(sl[n]) * k_row, k.data<float>() + size_t(n) * k_row,
                k_row * sizeof(float));
    std::memcpy(v_cache.data<float>() + size_t(sl[n]) * v_row, v.data<float>() + size_t(n) * v_row,
                v_row * sizeof(float));
  }
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  if (q.dtype() != DType::F32) throw Unsupported("paged_attention (cpu): only F32");
  const int64_t B = q.dim(0), H = q.dim(1), hd = q.dim(2), K = v_cache.dim(2);
  const int64_t num_blocks = k_cache.dim(0), bs = k_cache.dim(1), max_blocks = block_table.dim(1);
  const int32_t* table = block_table.data<int32_t>();
  const int32_t* lens = seq_lens.data<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    if (lens[b] < 0 || int64_t(lens[b]) > max_blocks * bs) {
      throw InvalidArgument("paged_attention: sequence " + std::to_string(b) + " has length " +
                            std::to_string(lens[b]) + " beyond its block table");
    }
    for (int64_t i = 0; i < (int64_t(lens[b]) + bs - 1) / bs; ++i) {
      const int32_t blk = table[b * max_blocks + i];
      if (blk < 0 || blk >= num_blocks) {
        throw InvalidArgument("paged_attention: block id " + std::to_string(blk) + " of sequence " +
                              std::to_string(b) + " outside the pool");
      }
    }
  }
  const int64_t group = H / K;
  const float scale = 1.0f / std::sqrt(float(hd));
  const float* qd = q.data<float>();
  const float* kd = k_cache.data<float>();
  const float* vd = v_cache.data<float>();
  float* od = out.data<float>();
  parallel_for(B * H, 1, [&](int64_t w0, int64_t w1) {
    std::vector<float> scores, acc(static_cast<size_t>(hd));
    for (int64_t w = w0; w < w1; ++w) {
      const int64_t b = w / H, h = w % H, n = lens[b];
      const float* qi = qd + (b * H + h) * hd;
      float* oi = od + (b * H + h) * hd;
      if (n == 0) {
        std::fill(oi, oi + hd, 0.f);
        continue;
      }
      const auto row_of = [&](int64_t j) { return int64_t(table[b * max_blocks + j / bs]) * bs + j % bs; };
      scores.resize(size_t(n));
      float m = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        const float* kj = kd + (row_of(j) * H + h) * hd;
        float s = 0.f;
        for (int64_t c = 0; c < hd; ++c) s += qi[c] * kj[c];
        scores[size_t(j)] = s * scale;
        m = std::max(m, scores[size_t(j)]);
      }
      double sum = 0;
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t j = 0; j < n; ++j) {
        const float p = std::exp(scores[size_t(j)] - m);
        sum += p;
        const float* vj = vd + (row_of(j) * K + h / group) * hd;
        for (int64_t c = 0; c < hd; ++c) acc[size_t(c)] += p * vj[c];
      }
      const double lse = double(m) + std::log(sum);
      const double gate = 1.0 / (1.0 + std::exp(-(lse - double(sinks.data<float>()[h]))));
      const float f = float(gate / sum);
      for (int64_t c = 0; c < hd; ++c) oi[c] = acc[size_t(c)] * f;
    }
  });
}

}  // namespace falcon::ops::cpu
