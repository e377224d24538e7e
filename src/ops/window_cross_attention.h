// Windowed multi-head cross attention from a high-resolution query grid to a low-resolution
// key grid (AnyUp's cross_decode): query pixel (y, x) of the H x W grid sees only the key
// cells of the h x w grid in rows
//
//   [floor(clamp((y + 1/2) / H - ratio, 0, 1) * h), ceil(clamp((y + 1/2) / H + ratio, 0, 1) * h))
//
// and the same window for columns (float32 arithmetic, as the reference's window2d). Per
// head: out = softmax(scale * q . k over the window) . v. Computed in tiles of queries that
// share one window union, so no (queries x keys) mask or score matrix is ever formed.
// q: [heads*dq, H, W]; k: [heads*dq, h, w]; v: [heads*dv, h, w]; out: [heads*dv, Ho, Wo]
// with Ho <= H, Wo <= W: the top-left Ho x Wo queries (a crop of the full output that the
// other queries are never computed for; windows still follow the full H x W grid). F32.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace falcon::ops {

void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            float ratio, float scale, Tensor& out);

// The window of query index i (of n) over a key axis of length m: [begin, end).
struct KeyWindow {
  int64_t begin, end;
};
KeyWindow attention_window(int64_t i, int64_t n, int64_t m, float ratio);

namespace cpu {
void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            float ratio, float scale, Tensor& out);
}
namespace cuda {
void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            float ratio, float scale, Tensor& out);
}

}  // namespace falcon::ops
