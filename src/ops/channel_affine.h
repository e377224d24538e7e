// Per-channel affine map of a [C, ...] image: out[c, p] = x[c, p] * scale[c] + shift[c]
// (image normalisation, e.g. ImageNet mean / std). x, out: [C, ...] F32; scale, shift: [C]
// F32. out may alias x.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out);

namespace cpu {
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out);
}
namespace cuda {
void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out);
}

}  // namespace falcon::ops
