// CUDA entry points of channel_affine: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/channel_affine.h"

namespace falcon::ops::cuda {

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out,
                    bool silu) {
  throw Unsupported("channel_affine: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
