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
#include "ops/math_precision.h"

namespace falcon::ops {

enum class PadMode { Zeros, Reflect };

// Fusions for the 1x1 convolution without padding (AnyUp's GroupNorm -> SiLU -> conv
// chains), each saving a full pass over a large image. Refused for other kernels.
struct Conv2dFusion {
  // The input is read as act(x[i] * in_scale[i] + in_shift[i]), act = SiLU when in_silu
  // (a GroupNorm folded into a per-channel scale and shift by group_norm_affine).
  const Tensor* in_scale = nullptr;  // [Ci] F32
  const Tensor* in_shift = nullptr;  // [Ci] F32
  bool in_silu = false;
  // Receives the mean and biased variance of every output channel of the result (after
  // accumulate): the statistics the next GroupNorm needs, as channel_moments computes them.
  Tensor* out_moments = nullptr;  // [Co, 2] F32
};

// precision: TF32 lets CUDA use the tensor cores (the CPU computes in f32 either way).
void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode,
            Tensor& out, bool accumulate = false, const Conv2dFusion& fusion = {},
            MathPrecision precision = MathPrecision::F32);

namespace cpu {
void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode,
            Tensor& out, bool accumulate, const Conv2dFusion& fusion);
}
namespace cuda {
void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode,
            Tensor& out, bool accumulate, const Conv2dFusion& fusion, MathPrecision precision);
}

}  // namespace falcon::ops
