// CUDA entry points of channel_norm: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/channel_norm.h"

namespace falcon::ops::cuda {

void channel_l2_normalize(const Tensor& x, float eps, Tensor& out) {
  throw Unsupported(
      "channel_l2_normalize: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  throw Unsupported("channel_rms_norm: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
