// CUDA HWC -> CHW (zero-padded to out's size) and CHW crop: one thread per output element.
#include <algorithm>

#include "ops/chw_layout.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {
namespace {
__global__ void hwc_to_chw_kernel(const float* x, float* out, int64_t h, int64_t w, int64_t c, int64_t oh,
                                  int64_t ow) {
  const int64_t n = c * oh * ow;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = i / (oh * ow), y = (i / ow) % oh, xx = i % ow;
    out[i] = y < h && xx < w ? x[(y * w + xx) * c + ch] : 0.f;
  }
}
__global__ void crop_kernel(const float* x, float* out, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  const int64_t n = c * oh * ow;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = i / (oh * ow), y = (i / ow) % oh, xx = i % ow;
    out[i] = x[(ch * h + y) * w + xx];
  }
}
unsigned grid_for(int64_t n) { return unsigned(std::max<int64_t>(1, std::min<int64_t>((n + 255) / 256, 65535))); }
}  // namespace

void hwc_to_chw(const Tensor& x, Tensor& out) {
  if (out.numel() == 0) return;
  hwc_to_chw_kernel<<<grid_for(out.numel()), 256, 0, stream()>>>(x.data<float>(), out.data<float>(), x.dim(0),
                                                                  x.dim(1), x.dim(2), out.dim(1), out.dim(2));
  FALCON_CUDA_CHECK_LAUNCH("hwc_to_chw_kernel");
}

void crop_chw(const Tensor& x, Tensor& out) {
  if (out.numel() == 0) return;
  crop_kernel<<<grid_for(out.numel()), 256, 0, stream()>>>(x.data<float>(), out.data<float>(), out.dim(0), x.dim(1),
                                                            x.dim(2), out.dim(1), out.dim(2));
  FALCON_CUDA_CHECK_LAUNCH("crop_kernel");
}

}  // namespace falcon::ops::cuda
