// CUDA entry points of window_cross_attention: placeholders until the kernels are written, so that
// CUDA builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/window_cross_attention.h"

namespace falcon::ops::cuda {

void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads,
                            float ratio, float scale, Tensor& out) {
  throw Unsupported(
      "window_cross_attention: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
