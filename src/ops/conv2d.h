// 2-D convolution of one image, stride 1 (the image-side layers of the segmentation path).
//
//   out[o, y, x] = bias[o] + sum_{i, dy, dx} w[o, i, dy, dx] * xp[i, y + dy, x + dx]
//
// where xp is x padded by `padding` pixels on every side, with zeros or by reflection
// (torch's padding_mode "reflect": the edge pixel is not repeated; needs padding < H, W).
// x: [Ci, H, W]; w: [Co, Ci, k, k]; bias: [Co] or null;
// out: [Co, H + 2p - k + 1, W + 2p - k + 1]. All F32.
// accumulate: out += conv(x) instead of out = conv(x) (residual connections).
// A 1x1 convolution without padding may run in place (out aliasing x, Ci == Co): each
// output pixel reads only its own input pixel.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

enum class PadMode { Zeros, Reflect };

void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode, Tensor& out,
            bool accumulate = false);

namespace cpu {
void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode, Tensor& out,
            bool accumulate);
}
namespace cuda {
void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode, Tensor& out,
            bool accumulate);
}

}  // namespace falcon::ops
