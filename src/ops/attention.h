#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace falcon::ops {

// Which keys a query sees. Query row i sits at absolute position p = q_offset + i; key j is
// visible when j <= p, or when both p and j lie in [image_begin, image_end) (the image block
// attends bidirectionally; image_end is one past the last img token, so end_of_image itself
// is causal). No image: image_begin = image_end = 0.
struct AttentionMask {
  int64_t q_offset = 0;
  int64_t image_begin = 0;
  int64_t image_end = 0;
};

// Scaled dot-product attention with GQA and learned sinks, for one sequence:
//   s[h, i, j] = q[i, h] . k[j, h] / sqrt(hd) over visible j;  lse = logsumexp_j s
//   out[i, h] = softmax_j(s) v[j, h / (H/K)] * sigmoid(lse - sinks[h])
// q: [S, H, hd]; k: [T, H, hd]; v: [T, K, hd] with T = q_offset + S; sinks: [H] F32;
// out: [S, H, hd]. Never materialises more than a tile of scores.
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks,
               const AttentionMask& mask, Tensor& out);

namespace cpu {
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks,
               const AttentionMask& mask, Tensor& out);
}
namespace cuda {
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& sinks,
               const AttentionMask& mask, Tensor& out);
}

}  // namespace falcon::ops
