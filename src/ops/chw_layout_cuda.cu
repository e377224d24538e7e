// CUDA HWC -> CHW (zero-padded to out's size) and CHW crop. hwc_to_chw transposes 32 x 32 tiles
// of (pixels, channels) through shared memory, so reads run along channels and writes along
// pixels (the hidden states to conv_segm's input: 4096 pixels x 1024 channels); the padding is
// zeroed separately. Crop: one thread per output element.
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
// Grid (pixel tiles, channel tiles); block 32 x 8. x: [P = h*w, c]; out: [c, oh, ow].
__global__ void hwc_transpose_kernel(const float* x, float* out, int64_t p, int64_t c, int64_t w, int64_t oh,
                                     int64_t ow) {
  __shared__ float tile[32][33];
  const int64_t p0 = int64_t(blockIdx.x) * 32, c0 = int64_t(blockIdx.y) * 32;
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int64_t pix = p0 + r, ch = c0 + threadIdx.x;
    if (pix < p && ch < c) tile[r][threadIdx.x] = x[pix * c + ch];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += 8) {
    const int64_t ch = c0 + r, pix = p0 + threadIdx.x;
    if (pix < p && ch < c) out[(ch * oh + pix / w) * ow + pix % w] = tile[threadIdx.x][r];
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
  const int64_t h = x.dim(0), w = x.dim(1), c = x.dim(2), oh = out.dim(1), ow = out.dim(2);
  if (h * w == 0 || c == 0) {
    FALCON_CUDA_CHECK(cudaMemsetAsync(out.raw(), 0, size_t(out.numel()) * sizeof(float), stream()));
    return;
  }
  if ((h * w + 31) / 32 > 2147483647 || (c + 31) / 32 > 65535) {
    hwc_to_chw_kernel<<<grid_for(out.numel()), 256, 0, stream()>>>(x.data<float>(), out.data<float>(), h, w, c, oh,
                                                                    ow);
    FALCON_CUDA_CHECK_LAUNCH("hwc_to_chw_kernel");
    return;
  }
  if (oh > h || ow > w) FALCON_CUDA_CHECK(cudaMemsetAsync(out.raw(), 0, size_t(out.numel()) * sizeof(float), stream()));
  const dim3 grid(unsigned((h * w + 31) / 32), unsigned((c + 31) / 32));
  hwc_transpose_kernel<<<grid, dim3(32, 8), 0, stream()>>>(x.data<float>(), out.data<float>(), h * w, c, w, oh, ow);
  FALCON_CUDA_CHECK_LAUNCH("hwc_transpose_kernel");
}

void crop_chw(const Tensor& x, Tensor& out) {
  if (out.numel() == 0) return;
  crop_kernel<<<grid_for(out.numel()), 256, 0, stream()>>>(x.data<float>(), out.data<float>(), out.dim(0), x.dim(1),
                                                            x.dim(2), out.dim(1), out.dim(2));
  FALCON_CUDA_CHECK_LAUNCH("crop_kernel");
}

}  // namespace falcon::ops::cuda
