// CUDA adaptive_avg_pool2d: one thread per output cell.
// Block means (sizes divide; AnyUp's 2x and 16x pools of 1024 x 1024 maps): grid (columns,
// rows, channels), no index division; rows of a block summed with 16-byte loads when the block
// width allows, so a warp reads whole contiguous row segments. Other sizes: torch's adaptive
// windows, rows outer so that a warp's loads stay within rows.
#include <algorithm>
#include <cstdint>

#include "ops/adaptive_avg_pool2d.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {
namespace {
__global__ void block_mean_kernel(const float* x, float* out, int h, int w, int oh, int ow, int fy, int fx,
                                  bool vec) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x, i = blockIdx.y, ch = blockIdx.z;
  if (j >= ow) return;
  const float* src = x + (size_t(ch) * h + size_t(i) * fy) * w + size_t(j) * fx;
  float s = 0.f;
  for (int yy = 0; yy < fy; ++yy, src += w) {
    float row = 0.f;
    if (vec) {
      for (int xx = 0; xx < fx; xx += 4) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(src + xx));
        row += (v.x + v.y) + (v.z + v.w);
      }
    } else {
      for (int xx = 0; xx < fx; ++xx) row += __ldg(src + xx);
    }
    s += row;
  }
  out[(size_t(ch) * oh + i) * ow + j] = s / float(fy * fx);
}

__global__ void pool_kernel(const float* x, float* out, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  const int64_t n = c * oh * ow;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ch = t / (oh * ow), i = (t / ow) % oh, j = t % ow;
    const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
    const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
    float s = 0.f;
    for (int64_t y = y0; y < y1; ++y) {
      float row = 0.f;
      for (int64_t xx = x0; xx < x1; ++xx) row += x[(ch * h + y) * w + xx];
      s += row;
    }
    out[t] = s / float((y1 - y0) * (x1 - x0));
  }
}
}  // namespace

void adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2), oh = out.dim(1), ow = out.dim(2);
  if (h % oh == 0 && w % ow == 0 && c <= 65535 && oh <= 65535 && x.numel() < (int64_t(1) << 40)) {
    const int64_t fx = w / ow;
    const bool vec = fx % 4 == 0 && w % 4 == 0 && reinterpret_cast<uintptr_t>(x.raw()) % 16 == 0;
    const int threads = int(std::min<int64_t>(256, (ow + 31) / 32 * 32));
    const dim3 grid(unsigned((ow + threads - 1) / threads), unsigned(oh), unsigned(c));
    block_mean_kernel<<<grid, threads, 0, stream()>>>(x.data<float>(), out.data<float>(), int(h), int(w), int(oh),
                                                      int(ow), int(h / oh), int(fx), vec);
    FALCON_CUDA_CHECK_LAUNCH("block_mean_kernel");
    return;
  }
  pool_kernel<<<unsigned(std::min<int64_t>((n + 255) / 256, 65535)), 256, 0, stream()>>>(
      x.data<float>(), out.data<float>(), c, h, w, oh, ow);
  FALCON_CUDA_CHECK_LAUNCH("pool_kernel");
}

}  // namespace falcon::ops::cuda
