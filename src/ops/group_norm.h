// Group normalisation of one image (torch.nn.GroupNorm), optionally followed by SiLU, the
// pair that opens every AnyUp ResBlock branch, and the two pieces it is made of (so that
// large images can take their statistics from a convolution's epilogue and apply the
// normalisation inside the next convolution: see Conv2dFusion).
//
//   out[c, p] = act((x[c, p] - mean_g) / sqrt(var_g + eps) * weight[c] + bias[c])
//
// g = c / (C / groups); mean_g and the biased variance var_g run over the C / groups
// channels of the group and every pixel. act is SiLU (x * sigmoid(x)) when `silu`, else
// identity. x, out: [C, ...] F32 (pixels flattened); weight, bias: [C] F32. out may alias x.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps,
                bool silu, Tensor& out);

// moments[c] = (mean, biased variance) of channel c of x over its pixels. x: [C, ...];
// moments: [C, 2] F32.
void channel_moments(const Tensor& x, Tensor& moments);

// The group norm as a per-channel affine map, from per-channel moments (equal pixel counts):
// group_norm(x) = x * scale + shift. moments: [C, 2]; weight, bias, scale, shift: [C] F32.
void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups,
                       float eps, Tensor& scale, Tensor& shift);

namespace cpu {
void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps,
                bool silu, Tensor& out);
void channel_moments(const Tensor& x, Tensor& moments);
void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups,
                       float eps, Tensor& scale, Tensor& shift);
}  // namespace cpu
namespace cuda {
void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps,
                bool silu, Tensor& out);
void channel_moments(const Tensor& x, Tensor& moments);
void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups,
                       float eps, Tensor& scale, Tensor& shift);
}  // namespace cuda

}  // namespace falcon::ops
