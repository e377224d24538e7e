// Group normalisation of one image (torch.nn.GroupNorm), optionally followed by SiLU, the
// pair that opens every AnyUp ResBlock branch.
//
//   out[c, p] = act((x[c, p] - mean_g) / sqrt(var_g + eps) * weight[c] + bias[c])
//
// g = c / (C / groups); mean_g and the biased variance var_g run over the C / groups
// channels of the group and every pixel. act is SiLU (x * sigmoid(x)) when `silu`, else
// identity. x, out: [C, ...] F32 (pixels flattened); weight, bias: [C] F32. out may alias x.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps, bool silu,
                Tensor& out);

namespace cpu {
void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps, bool silu,
                Tensor& out);
}
namespace cuda {
void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps, bool silu,
                Tensor& out);
}

}  // namespace falcon::ops
