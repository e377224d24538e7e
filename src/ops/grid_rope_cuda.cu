// CUDA entry points of grid_rope: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/grid_rope.h"

namespace falcon::ops::cuda {

void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out) {
  throw Unsupported("grid_rope: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
