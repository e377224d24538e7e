// Per-channel affine map of a [C, ...] image, optionally followed by SiLU:
// out[c, p] = act(x[c, p] * scale[c] + shift[c]) (image normalisation with ImageNet mean /
// std; a GroupNorm given as scale and shift by group_norm_affine). x, out: [C, ...] F32;
// scale, shift: [C] F32. out may alias x.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out,
                    bool silu = false);

namespace cpu {
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out,
                    bool silu);
}
namespace cuda {
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out,
                    bool silu);
}

}  // namespace falcon::ops
