// CUDA bilinear_resize (torch align_corners=False): one thread per output element; source
// coordinates computed in float with fma as the CPU version (and torch's CUDA kernel).
#include <algorithm>

#include "ops/bilinear_resize.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {
namespace {
__device__ void tap(int64_t i, int64_t in, int64_t out, int64_t& i0, int64_t& i1, float& l0, float& l1) {
  const float scale = float(in) / float(out);
  float src = fmaf(scale, float(i) + 0.5f, -0.5f);
  if (src < 0.f) src = 0.f;
  i0 = int64_t(src);
  l1 = src - float(i0);
  l0 = 1.f - l1;
  i1 = i0 < in - 1 ? i0 + 1 : i0;
}
__global__ void bilinear_kernel(const float* x, float* out, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  const int64_t n = c * oh * ow;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = t / (oh * ow), i = (t / ow) % oh, j = t % ow;
    int64_t y0, y1, x0, x1;
    float ly0, ly1, lx0, lx1;
    tap(i, h, oh, y0, y1, ly0, ly1);
    tap(j, w, ow, x0, x1, lx0, lx1);
    const float* r0 = x + (ch * h + y0) * w;
    const float* r1 = x + (ch * h + y1) * w;
    out[t] = ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
  }
}
}  // namespace

void bilinear_resize(const Tensor& x, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  bilinear_kernel<<<unsigned(std::min<int64_t>((n + 255) / 256, 65535)), 256, 0, stream()>>>(
      x.data<float>(), out.data<float>(), x.dim(0), x.dim(1), x.dim(2), out.dim(1), out.dim(2));
  FALCON_CUDA_CHECK_LAUNCH("bilinear_kernel");
}

}  // namespace falcon::ops::cuda
