// CUDA grid_rope. Tables of cos / sin of the row angles (C x H) and column angles (C x W) in
// double, as the CPU's, by a small kernel; then grid (column blocks, rows, channel pairs):
// the block's row entries are uniform, each thread rotates 4 pixels of the pair with 16-byte
// accesses (angle addition in float as the CPU). In place safe: each element is read before
// it is written by the same thread.
#include <algorithm>
#include <cstdint>

#include "ops/cuda_common.cuh"
#include "ops/grid_rope.h"
#include "ops/grow_buffer_cuda.cuh"

namespace falcon::ops::cuda {
namespace {
__device__ float linspace01(int64_t i, int64_t n) {
  if (n == 1) return 0.f;
  const float step = 1.f / float(n - 1);
  return i < n / 2 ? step * float(i) : 1.f - step * float(n - 1 - i);
}

// tab: cos_row [C][H], sin_row [C][H], cos_col [C][W], sin_col [C][W].
__global__ void rope_tables_kernel(const float* f, float* tab, int64_t c, int64_t h, int64_t w) {
  const int64_t n = c * (h + w);
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    if (t < c * h) {
      const int64_t j = t / h, r = t % h;
      const double a = double(linspace01(r, h)) * f[j];
      tab[t] = float(cos(a));
      tab[c * h + t] = float(sin(a));
    } else {
      const int64_t t2 = t - c * h, j = t2 / w, col = t2 % w;
      const double a = double(linspace01(col, w)) * f[c + j];
      tab[2 * c * h + t2] = float(cos(a));
      tab[2 * c * h + c * w + t2] = float(sin(a));
    }
  }
}

__device__ __forceinline__ void rotate(float a, float b, float cr1, float sr1, float cr2, float sr2, float cc1,
                                       float sc1, float cc2, float sc2, float& o1, float& o2) {
  const float cos1 = cr1 * cc1 - sr1 * sc1, sin1 = sr1 * cc1 + cr1 * sc1;
  const float cos2 = cr2 * cc2 - sr2 * sc2, sin2 = sr2 * cc2 + cr2 * sc2;
  o1 = a * cos1 - b * sin1;
  o2 = b * cos2 + a * sin2;
}

__global__ void grid_rope_kernel(const float* x, const float* tab, float* out, int c, int h, int w, bool vec) {
  const int half = c / 2, j = blockIdx.z, k = j + half, r = blockIdx.y;
  const float* cr = tab;
  const float* sr = tab + size_t(c) * h;
  const float* cc = tab + 2 * size_t(c) * h;
  const float* sc = cc + size_t(c) * w;
  const float cr1 = cr[size_t(j) * h + r], sr1 = sr[size_t(j) * h + r];
  const float cr2 = cr[size_t(k) * h + r], sr2 = sr[size_t(k) * h + r];
  const size_t i1 = (size_t(j) * h + r) * w, i2 = (size_t(k) * h + r) * w;
  const float *cc1 = cc + size_t(j) * w, *sc1 = sc + size_t(j) * w, *cc2 = cc + size_t(k) * w,
              *sc2 = sc + size_t(k) * w;
  if (vec) {
    const int col = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    if (col >= w) return;
    const float4 a = *reinterpret_cast<const float4*>(x + i1 + col), b = *reinterpret_cast<const float4*>(x + i2 + col);
    const float4 c1 = *reinterpret_cast<const float4*>(cc1 + col), s1 = *reinterpret_cast<const float4*>(sc1 + col);
    const float4 c2 = *reinterpret_cast<const float4*>(cc2 + col), s2 = *reinterpret_cast<const float4*>(sc2 + col);
    float4 o1, o2;
    rotate(a.x, b.x, cr1, sr1, cr2, sr2, c1.x, s1.x, c2.x, s2.x, o1.x, o2.x);
    rotate(a.y, b.y, cr1, sr1, cr2, sr2, c1.y, s1.y, c2.y, s2.y, o1.y, o2.y);
    rotate(a.z, b.z, cr1, sr1, cr2, sr2, c1.z, s1.z, c2.z, s2.z, o1.z, o2.z);
    rotate(a.w, b.w, cr1, sr1, cr2, sr2, c1.w, s1.w, c2.w, s2.w, o1.w, o2.w);
    *reinterpret_cast<float4*>(out + i1 + col) = o1;
    *reinterpret_cast<float4*>(out + i2 + col) = o2;
  } else {
    for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < w; col += gridDim.x * blockDim.x) {
      rotate(x[i1 + col], x[i2 + col], cr1, sr1, cr2, sr2, cc1[col], sc1[col], cc2[col], sc2[col], out[i1 + col],
             out[i2 + col]);
    }
  }
}
}  // namespace

void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  if (x.numel() == 0) return;
  if (c / 2 > 65535 || h > 65535) throw Unsupported("grid_rope on CUDA: more than 65535 rows or channel pairs");
  auto* tab = static_cast<float*>(grow_buffer(GrowBuffer::RopeTables, size_t(2 * c * (h + w)) * sizeof(float)));
  const int64_t nt = c * (h + w);
  rope_tables_kernel<<<unsigned(std::min<int64_t>((nt + 255) / 256, 65535)), 256, 0, stream()>>>(
      freqs.data<float>(), tab, c, h, w);
  FALCON_CUDA_CHECK_LAUNCH("rope_tables_kernel");
  const bool vec = w % 4 == 0 && reinterpret_cast<uintptr_t>(x.raw()) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(out.raw()) % 16 == 0;
  const int64_t items = vec ? w / 4 : w;
  const int threads = int(std::min<int64_t>(256, (items + 31) / 32 * 32));
  const dim3 grid(unsigned(vec ? (items + threads - 1) / threads : 1), unsigned(h), unsigned(c / 2));
  grid_rope_kernel<<<grid, threads, 0, stream()>>>(x.data<float>(), tab, out.data<float>(), int(c),
                                                   int(h), int(w), vec);
  FALCON_CUDA_CHECK_LAUNCH("grid_rope_kernel");
}

}  // namespace falcon::ops::cuda
