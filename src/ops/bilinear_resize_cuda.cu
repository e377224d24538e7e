// CUDA entry points of bilinear_resize: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/bilinear_resize.h"

namespace falcon::ops::cuda {

void bilinear_resize(const Tensor& x, Tensor& out) {
  throw Unsupported("bilinear_resize: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
