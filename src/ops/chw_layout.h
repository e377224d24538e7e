// Layout changes between the token / pixel layouts and [C, H, W] images.
//
// hwc_to_chw: out[c, y, x] = x[y, x, c] for y < H, x < W, and 0 on the rest of the larger
//   canvas (the zero padding of an image or patch grid to a square canvas).
//   x: [H, W, C]; out: [C, Ho, Wo] with Ho >= H, Wo >= W.
// crop_chw: out[c, y, x] = x[c, y, x], the top-left [h, w] window of x.
//   x: [C, H, W]; out: [C, h, w] with h <= H, w <= W.
// F32.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void hwc_to_chw(const Tensor& x, Tensor& out);
void crop_chw(const Tensor& x, Tensor& out);

namespace cpu {
void hwc_to_chw(const Tensor& x, Tensor& out);
void crop_chw(const Tensor& x, Tensor& out);
}  // namespace cpu
namespace cuda {
void hwc_to_chw(const Tensor& x, Tensor& out);
void crop_chw(const Tensor& x, Tensor& out);
}  // namespace cuda

}  // namespace falcon::ops
