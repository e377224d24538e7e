// CUDA entry points of adaptive_avg_pool2d: placeholders until the kernels are written, so that
// CUDA builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/adaptive_avg_pool2d.h"

namespace falcon::ops::cuda {

void adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  throw Unsupported(
      "adaptive_avg_pool2d: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
