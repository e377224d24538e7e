// CUDA entry points of feature_unification: placeholders until the kernels are written, so that
// CUDA builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/feature_unification.h"

namespace falcon::ops::cuda {

void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out) {
  throw Unsupported(
      "feature_unification: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
