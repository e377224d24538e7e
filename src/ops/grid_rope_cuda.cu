// CUDA grid_rope: one thread per (channel pair, pixel); angles in double as the CPU's tables
// (cos/sin of the row and column angles, combined by angle addition in float like the CPU).
#include <algorithm>

#include "ops/cuda_common.cuh"
#include "ops/grid_rope.h"

namespace falcon::ops::cuda {
namespace {
__device__ float linspace01(int64_t i, int64_t n) {
  if (n == 1) return 0.f;
  const float step = 1.f / float(n - 1);
  return i < n / 2 ? step * float(i) : 1.f - step * float(n - 1 - i);
}
__global__ void grid_rope_kernel(const float* x, const float* f, float* out, int64_t c, int64_t h, int64_t w) {
  const int64_t half = c / 2, n = half * h * w;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = t / (h * w), r = (t / w) % h, col = t % w, k = j + half;
    const double u = double(linspace01(r, h)), v = double(linspace01(col, w));
    const float cr1 = float(cos(u * f[j])), sr1 = float(sin(u * f[j]));
    const float cc1 = float(cos(v * f[c + j])), sc1 = float(sin(v * f[c + j]));
    const float cr2 = float(cos(u * f[k])), sr2 = float(sin(u * f[k]));
    const float cc2 = float(cos(v * f[c + k])), sc2 = float(sin(v * f[c + k]));
    const float cos1 = cr1 * cc1 - sr1 * sc1, sin1 = sr1 * cc1 + cr1 * sc1;
    const float cos2 = cr2 * cc2 - sr2 * sc2, sin2 = sr2 * cc2 + cr2 * sc2;
    const int64_t i1 = (j * h + r) * w + col, i2 = (k * h + r) * w + col;
    const float a = x[i1], b = x[i2];
    out[i1] = a * cos1 - b * sin1;
    out[i2] = b * cos2 + a * sin2;
  }
}
}  // namespace

void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out) {
  const int64_t n = x.numel() / 2;
  if (n == 0) return;
  grid_rope_kernel<<<unsigned(std::min<int64_t>((n + 255) / 256, 65535)), 256, 0, stream()>>>(
      x.data<float>(), freqs.data<float>(), out.data<float>(), x.dim(0), x.dim(1), x.dim(2));
  FALCON_CUDA_CHECK_LAUNCH("grid_rope_kernel");
}

}  // namespace falcon::ops::cuda
