// CUDA entry points of chw_layout: placeholders until the kernels are written, so that CUDA
// builds link; they refuse with Unsupported. The CPU kernels and the op tests are the
// reference the CUDA versions must match.
#include "core/error.h"
#include "ops/chw_layout.h"

namespace falcon::ops::cuda {

void hwc_to_chw(const Tensor& x, Tensor& out) {
  throw Unsupported("hwc_to_chw: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

void crop_chw(const Tensor& x, Tensor& out) {
  throw Unsupported("crop_chw: no CUDA kernel yet (the segmentation path runs on the CPU)");
}

}  // namespace falcon::ops::cuda
