// CUDA feature_unification, f32 (both precision modes). y[r, j] (grid row r, column j: the
// k x k convolution of channel (r*c + j) / O with kernel (r*c + j) % O, divided by the in-image
// tap count) is never stored (c * O values per pixel); it is computed twice instead:
//
// 1. stats: thread per (column j, 4 adjacent pixels): max and 1 / sum of exp over the O rows
//    (online), written to two [c, h, w] buffers.
// 2. output: thread per (row r, 4 adjacent pixels): out = 1/c sum_j exp(y - max_j) / sum_j.
//
// The 4 pixels share one neighbourhood: k rows of 3 aligned float4 (12 columns) per channel,
// so each tap costs a quarter of a load; the kernels' weights are block-uniform broadcasts.
// Needs w % 4 == 0 (aligned rows) and k in {3, 5, 7}; otherwise the thread-per-pixel kernel
// below (atomics over slices of the columns).
#include <algorithm>
#include <cmath>

#include "ops/cuda_common.cuh"
#include "ops/feature_unification.h"
#include "ops/grow_buffer_cuda.cuh"

namespace falcon::ops::cuda {
namespace {
constexpr int kMaxO = 256;

// y index i = g*O + o is read as grid row i / c, column i % c: column j of row r is
// conv(channel (r*c + j) / O, kernel (r*c + j) % O).
// Thread per (pixel, slice of the c columns); partial sums added atomically into out (zeroed).
__global__ void unify_kernel(const float* x, const float* basis, float* out, int64_t c, int64_t h, int64_t w,
                             int64_t no, int64_t k, int64_t slices) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= h * w * slices) return;
  const int64_t p = t % (h * w), slice = t / (h * w);
  const int64_t j0 = slice * c / slices, j1 = (slice + 1) * c / slices;
  const int64_t py = p / w, px = p % w, r = k / 2;
  auto inside = [r](int64_t i, int64_t n) {
    const int64_t hi = i + r < n - 1 ? i + r : n - 1, lo = i - r > 0 ? i - r : 0;
    return hi - lo + 1;
  };
  const float inv_denom = 1.f / float(inside(py, h) * inside(px, w));
  auto conv = [&](int64_t g, int64_t o) {
    float s = 0.f;
    for (int64_t dy = 0; dy < k; ++dy) {
      const int64_t sy = py + dy - r;
      if (sy < 0 || sy >= h) continue;
      for (int64_t dx = 0; dx < k; ++dx) {
        const int64_t sx = px + dx - r;
        if (sx < 0 || sx >= w) continue;
        s += basis[(o * k + dy) * k + dx] * x[(g * h + sy) * w + sx];
      }
    }
    return s * inv_denom;
  };
  float acc[kMaxO], y[kMaxO];
  for (int64_t o = 0; o < no; ++o) acc[o] = 0.f;
  for (int64_t j = j0; j < j1; ++j) {
    float mx = -3.4e38f;
    for (int64_t row = 0; row < no; ++row) {
      const int64_t i = row * c + j;
      y[row] = conv(i / no, i % no);
      mx = fmaxf(mx, y[row]);
    }
    float sum = 0.f;
    for (int64_t row = 0; row < no; ++row) {
      y[row] = expf(y[row] - mx);
      sum += y[row];
    }
    const float inv = 1.f / sum;
    for (int64_t row = 0; row < no; ++row) acc[row] += y[row] * inv;
  }
  const float inv_c = 1.f / float(c);
  for (int64_t o = 0; o < no; ++o) atomicAdd(out + o * h * w + p, acc[o] * inv_c);
}

constexpr int kUThreads = 256;

// Taps inside [0, n) of a k-wide window centred on i.
__device__ __forceinline__ int inside_taps(int i, int n, int r) { return min(i + r, n - 1) - max(i - r, 0) + 1; }

// Row sy of channel g around pixels px0 .. px0 + 3: columns px0 - R .. px0 + 3 + R (zeros
// outside the image) from the three aligned float4 at px0 - 4, px0, px0 + 4.
template <int KS>
__device__ __forceinline__ void load_row(const float* x, int g, int sy, int h, int w, int px0,
                                         float (&out)[4 + 2 * (KS / 2)]) {
  constexpr int R = KS / 2;
  float c[12];
#pragma unroll
  for (int i = 0; i < 12; ++i) c[i] = 0.f;
  if (sy >= 0 && sy < h) {
    const float* row = x + (size_t(g) * h + sy) * w + px0;
    float4 a = make_float4(0.f, 0.f, 0.f, 0.f), b = __ldg(reinterpret_cast<const float4*>(row)), d = a;
    if (px0 >= 4) a = __ldg(reinterpret_cast<const float4*>(row - 4));
    if (px0 + 4 < w) d = __ldg(reinterpret_cast<const float4*>(row + 4));
    c[0] = a.x, c[1] = a.y, c[2] = a.z, c[3] = a.w;
    c[4] = b.x, c[5] = b.y, c[6] = b.z, c[7] = b.w;
    c[8] = d.x, c[9] = d.y, c[10] = d.z, c[11] = d.w;
  }
#pragma unroll
  for (int i = 0; i < 4 + 2 * R; ++i) out[i] = c[4 - R + i];
}

// The k x (4 + 2R) neighbourhood of pixels px0 .. px0 + 3 in channel g.
template <int KS>
__device__ __forceinline__ void load_nb(const float* x, int g, int py, int px0, int h, int w,
                                        float (&nb)[KS][4 + 2 * (KS / 2)]) {
#pragma unroll
  for (int dy = 0; dy < KS; ++dy) load_row<KS>(x, g, py + dy - KS / 2, h, w, px0, nb[dy]);
}

// The 4 convolution values of a neighbourhood with kernel b (k x k), divided by the tap counts.
template <int KS>
__device__ __forceinline__ void conv4(const float (&nb)[KS][4 + 2 * (KS / 2)], const float* b,
                                      const float (&inv_den)[4], float (&y)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) y[q] = 0.f;
#pragma unroll
  for (int dy = 0; dy < KS; ++dy) {
#pragma unroll
    for (int dx = 0; dx < KS; ++dx) {
      const float bw = b[dy * KS + dx];
#pragma unroll
      for (int q = 0; q < 4; ++q) y[q] = fmaf(bw, nb[dy][q + dx], y[q]);
    }
  }
#pragma unroll
  for (int q = 0; q < 4; ++q) y[q] *= inv_den[q];
}

__device__ __forceinline__ void quad_denominators(int py, int px0, int h, int w, int r, float (&inv_den)[4]) {
  const int ty = inside_taps(py, h, r);
#pragma unroll
  for (int q = 0; q < 4; ++q) inv_den[q] = 1.f / float(ty * inside_taps(px0 + q, w, r));
}

// Grid (quads, c): column j = blockIdx.y.
template <int KS>
__global__ void __launch_bounds__(kUThreads) unify_stats_kernel(const float* x, const float* basis, float* mx_out,
                                                                 float* inv_out, int c, int h, int w, int no) {
  const int j = blockIdx.y, nqx = w / 4, quad = blockIdx.x * kUThreads + threadIdx.x;
  if (quad >= h * nqx) return;
  const int py = quad / nqx, px0 = (quad - py * nqx) * 4;
  float inv_den[4];
  quad_denominators(py, px0, h, w, KS / 2, inv_den);
  float mx[4], z[4];
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    mx[q] = -INFINITY;
    z[q] = 0.f;
  }
  for (int r = 0; r < no; ++r) {
    const int64_t i = int64_t(r) * c + j;
    const int g = int(i / no), o = int(i - int64_t(g) * no);
    float nb[KS][4 + 2 * (KS / 2)], y[4];
    load_nb<KS>(x, g, py, px0, h, w, nb);
    conv4<KS>(nb, basis + o * KS * KS, inv_den, y);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      if (y[q] > mx[q]) {
        z[q] = z[q] * expf(mx[q] - y[q]) + 1.f;
        mx[q] = y[q];
      } else {
        z[q] += expf(y[q] - mx[q]);
      }
    }
  }
  const size_t at = size_t(j) * h * w + size_t(py) * w + px0;
  *reinterpret_cast<float4*>(mx_out + at) = make_float4(mx[0], mx[1], mx[2], mx[3]);
  *reinterpret_cast<float4*>(inv_out + at) = make_float4(1.f / z[0], 1.f / z[1], 1.f / z[2], 1.f / z[3]);
}

// Grid (quads, O): row r = blockIdx.y. The basis sits in shared memory (o varies with j).
template <int KS>
__global__ void __launch_bounds__(kUThreads) unify_out_kernel(const float* x, const float* basis, const float* mx,
                                                               const float* inv, float* out, int c, int h, int w,
                                                               int no) {
  extern __shared__ float bs[];  // [O][k*k]
  for (int i = threadIdx.x; i < no * KS * KS; i += kUThreads) bs[i] = basis[i];
  __syncthreads();
  const int r = blockIdx.y, nqx = w / 4, quad = blockIdx.x * kUThreads + threadIdx.x;
  if (quad >= h * nqx) return;
  const int py = quad / nqx, px0 = (quad - py * nqx) * 4;
  float inv_den[4];
  quad_denominators(py, px0, h, w, KS / 2, inv_den);
  const size_t plane = size_t(h) * w, p0 = size_t(py) * w + px0;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  float nb[KS][4 + 2 * (KS / 2)];
  int g_loaded = -1;
  for (int j = 0; j < c; ++j) {
    const int64_t i = int64_t(r) * c + j;
    const int g = int(i / no), o = int(i - int64_t(g) * no);
    if (g != g_loaded) {  // block-uniform; every O / c-th column at most (twice per row for AnyUp)
      load_nb<KS>(x, g, py, px0, h, w, nb);
      g_loaded = g;
    }
    float y[4];
    conv4<KS>(nb, bs + o * KS * KS, inv_den, y);
    const float4 m4 = __ldg(reinterpret_cast<const float4*>(mx + size_t(j) * plane + p0));
    const float4 i4 = __ldg(reinterpret_cast<const float4*>(inv + size_t(j) * plane + p0));
    acc[0] += expf(y[0] - m4.x) * i4.x;
    acc[1] += expf(y[1] - m4.y) * i4.y;
    acc[2] += expf(y[2] - m4.z) * i4.z;
    acc[3] += expf(y[3] - m4.w) * i4.w;
  }
  const float inv_c = 1.f / float(c);
  *reinterpret_cast<float4*>(out + size_t(r) * plane + p0) =
      make_float4(acc[0] * inv_c, acc[1] * inv_c, acc[2] * inv_c, acc[3] * inv_c);
}

template <int KS>
void unify_quads(const Tensor& x, const Tensor& basis, Tensor& out) {
  const int c = int(x.dim(0)), h = int(x.dim(1)), w = int(x.dim(2)), no = int(basis.dim(0));
  float* mx = static_cast<float*>(grow_buffer(GrowBuffer::UnificationStats, 2 * size_t(c) * h * w * sizeof(float)));
  float* inv = mx + size_t(c) * h * w;
  const unsigned quad_blocks = unsigned((h * (w / 4) + kUThreads - 1) / kUThreads);
  unify_stats_kernel<KS><<<dim3(quad_blocks, unsigned(c)), kUThreads, 0, stream()>>>(
      x.data<float>(), basis.data<float>(), mx, inv, c, h, w, no);
  FALCON_CUDA_CHECK_LAUNCH("unify_stats_kernel");
  const size_t smem = size_t(no) * KS * KS * sizeof(float);
  FALCON_CUDA_CHECK(cudaFuncSetAttribute(unify_out_kernel<KS>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  unify_out_kernel<KS><<<dim3(quad_blocks, unsigned(no)), kUThreads, smem, stream()>>>(
      x.data<float>(), basis.data<float>(), mx, inv, out.data<float>(), c, h, w, no);
  FALCON_CUDA_CHECK_LAUNCH("unify_out_kernel");
}
}  // namespace

void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2), no = basis.dim(0), k = basis.dim(2);
  if (no > kMaxO) throw Unsupported("feature_unification on CUDA: more than 256 output channels");
  if (h * w == 0) return;
  const bool quads = w % 4 == 0 && reinterpret_cast<uintptr_t>(x.raw()) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(out.raw()) % 16 == 0 && c < 65536 && no < 65536 &&
                     x.numel() < (int64_t(1) << 31) && no * k * k * int64_t(sizeof(float)) <= 96 * 1024;
  if (quads && (k == 3 || k == 5 || k == 7)) {
    if (k == 3) unify_quads<3>(x, basis, out);
    if (k == 5) unify_quads<5>(x, basis, out);
    if (k == 7) unify_quads<7>(x, basis, out);
    return;
  }
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(c, 16));
  FALCON_CUDA_CHECK(cudaMemsetAsync(out.raw(), 0, size_t(out.numel()) * sizeof(float), stream()));
  const int64_t n = h * w * slices;
  unify_kernel<<<unsigned((n + 63) / 64), 64, 0, stream()>>>(x.data<float>(), basis.data<float>(), out.data<float>(),
                                                              c, h, w, no, k, slices);
  FALCON_CUDA_CHECK_LAUNCH("unify_kernel");
}

}  // namespace falcon::ops::cuda
