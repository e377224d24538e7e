// CUDA adaptive_avg_pool2d: one thread per output cell (row sums then columns, as the CPU).
#include <algorithm>

#include "ops/adaptive_avg_pool2d.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {
namespace {
__global__ void pool_kernel(const float* x, float* out, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  const int64_t n = c * oh * ow;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = t / (oh * ow), i = (t / ow) % oh, j = t % ow;
    const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
    const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
    float s = 0.f;
    for (int64_t xx = x0; xx < x1; ++xx) {
      float col = 0.f;
      for (int64_t y = y0; y < y1; ++y) col += x[(ch * h + y) * w + xx];
      s += col;
    }
    out[t] = s / float((y1 - y0) * (x1 - x0));
  }
}
}  // namespace

void adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  pool_kernel<<<unsigned(std::min<int64_t>((n + 255) / 256, 65535)), 256, 0, stream()>>>(
      x.data<float>(), out.data<float>(), x.dim(0), x.dim(1), x.dim(2), out.dim(1), out.dim(2));
  FALCON_CUDA_CHECK_LAUNCH("pool_kernel");
}

}  // namespace falcon::ops::cuda
