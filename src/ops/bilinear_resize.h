// Bilinear resize of one image with torch's F.interpolate(mode="bilinear",
// align_corners=False) semantics: output pixel i samples input coordinate
// max(0, (i + 0.5) * in / out - 0.5), interpolating its two neighbours (the last one
// repeated at the edge). The source coordinate is computed in float as torch's CUDA kernel
// does, so thresholds taken on the result match the reference.
// x: [C, h, w]; out: [C, H, W]. F32.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void bilinear_resize(const Tensor& x, Tensor& out);

namespace cpu {
void bilinear_resize(const Tensor& x, Tensor& out);
}
namespace cuda {
void bilinear_resize(const Tensor& x, Tensor& out);
}

}  // namespace falcon::ops
