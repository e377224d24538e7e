// CUDA entry points of group_norm: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/group_norm.h"

namespace falcon::ops::cuda {

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps,
                bool silu, Tensor& out) {
  throw Unsupported("group_norm: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

void channel_moments(const Tensor& x, Tensor& moments) {
  throw Unsupported("channel_moments: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups,
                       float eps, Tensor& scale, Tensor& shift) {
  throw Unsupported(
      "group_norm_affine: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
