// CUDA entry points of conv2d: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/conv2d.h"

namespace falcon::ops::cuda {

void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode,
            Tensor& out, bool accumulate, const Conv2dFusion& fusion) {
  throw Unsupported("conv2d: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
