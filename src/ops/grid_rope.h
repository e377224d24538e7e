// 2-D rotary position embedding on the pixels of a [C, H, W] image (AnyUp's RoPE on the
// image encoding). Pixel (r, c) has coordinates (u, v) = (linspace(0, 1, H)[r],
// linspace(0, 1, W)[c]); channel j is rotated by angle a_j = u * freqs[0, j] + v * freqs[1, j]:
//
//   out[j] = x[j] * cos(a_j) + rot[j] * sin(a_j),   rot = (-x[C/2 ..], x[.. C/2])
//
// (rotate_half on the two halves of the channels). x, out: [C, H, W] F32, C even; freqs:
// [2, C] F32. out may alias x.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out);

namespace cpu {
void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out);
}
namespace cuda {
void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out);
}

}  // namespace falcon::ops
