// CUDA GroupNorm pieces: per-channel moments (double sums of values shifted by the channel's
// first element, as the CPU; each channel split over several blocks whose partial sums a second
// kernel adds, so that a 1024 x 1024 map is read at full bandwidth), the group affine fold, and
// the full norm.
#include <algorithm>
#include <cstdint>

#include "ops/channel_affine.h"
#include "ops/cuda_common.cuh"
#include "ops/group_norm.h"
#include "ops/grow_buffer_cuda.cuh"

namespace falcon::ops::cuda {
namespace {
constexpr int kThreads = 256;
constexpr int64_t kPerBlock = 65536;  // elements of a channel per block

// Grid (splits, C): sums of d and d^2 (d = x - x[c, 0]) over the split's range.
__global__ void moments_partial_kernel(const float* x, double2* partial, int64_t n, int64_t per, bool vec) {
  const int64_t ch = blockIdx.y, begin = blockIdx.x * per, end = std::min(n, begin + per);
  const float* row = x + ch * n;
  const double s0 = row[0];
  double s = 0, q = 0;
  if (vec) {  // per and n are multiples of 4, rows 16-byte aligned
    for (int64_t i = begin + 4 * int64_t(threadIdx.x); i < end; i += 4 * kThreads) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(row + i));
      const double d0 = v.x - s0, d1 = v.y - s0, d2 = v.z - s0, d3 = v.w - s0;
      s += (d0 + d1) + (d2 + d3);
      q += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
    }
  } else {
    for (int64_t i = begin + threadIdx.x; i < end; i += kThreads) {
      const double d = double(row[i]) - s0;
      s += d;
      q += d * d;
    }
  }
  for (int o = 16; o > 0; o /= 2) {
    s += __shfl_xor_sync(0xffffffffu, s, o);
    q += __shfl_xor_sync(0xffffffffu, q, o);
  }
  __shared__ double ws[kThreads / 32], wq[kThreads / 32];
  if (threadIdx.x % 32 == 0) {
    ws[threadIdx.x / 32] = s;
    wq[threadIdx.x / 32] = q;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double ts = 0, tq = 0;
    for (int i = 0; i < kThreads / 32; ++i) {
      ts += ws[i];
      tq += wq[i];
    }
    partial[ch * gridDim.x + blockIdx.x] = make_double2(ts, tq);
  }
}

__global__ void moments_final_kernel(const float* x, const double2* partial, float* m, int64_t c, int64_t n,
                                     int splits) {
  const int64_t ch = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (ch >= c) return;
  double s = 0, q = 0;
  for (int i = 0; i < splits; ++i) {
    const double2 p = partial[ch * splits + i];
    s += p.x;
    q += p.y;
  }
  const double mean = s / double(n);
  m[2 * ch] = float(double(x[ch * n]) + mean);
  m[2 * ch + 1] = float(fmax(0.0, q / double(n) - mean * mean));
}

__global__ void affine_kernel(const float* m, const float* weight, const float* bias, int groups, int64_t per_group,
                              float eps, float* scale, float* shift) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= groups) return;
  double mean = 0;
  for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) mean += m[2 * ch];
  mean /= double(per_group);
  double var = 0;
  for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
    const double d = double(m[2 * ch]) - mean;
    var += double(m[2 * ch + 1]) + d * d;
  }
  var /= double(per_group);
  const double inv = 1.0 / sqrt(var + double(eps));
  for (int64_t ch = g * per_group; ch < (g + 1) * per_group; ++ch) {
    const double w = weight[ch];
    scale[ch] = float(inv * w);
    shift[ch] = float(bias[ch] - mean * inv * w);
  }
}
}  // namespace

void channel_moments(const Tensor& x, Tensor& moments) {
  const int64_t c = x.dim(0), n = c ? x.numel() / c : 0;
  if (c == 0) return;
  if (n == 0) {
    FALCON_CUDA_CHECK(cudaMemsetAsync(moments.raw(), 0, size_t(2 * c) * sizeof(float), stream()));
    return;
  }
  const bool vec = n % 4 == 0 && reinterpret_cast<uintptr_t>(x.raw()) % 16 == 0;
  const int64_t splits = std::min<int64_t>((n + kPerBlock - 1) / kPerBlock, 1024);
  int64_t per = (n + splits - 1) / splits;
  per = (per + 3) / 4 * 4;  // keeps the vector path's ranges aligned
  const int64_t blocks = (n + per - 1) / per;
  auto* partial = static_cast<double2*>(grow_buffer(GrowBuffer::ChannelMoments, size_t(c * blocks) * sizeof(double2)));
  for (int64_t c0 = 0; c0 < c; c0 += 65535) {
    const int64_t cn = std::min<int64_t>(65535, c - c0);
    moments_partial_kernel<<<dim3(unsigned(blocks), unsigned(cn)), kThreads, 0, stream()>>>(
        x.data<float>() + c0 * n, partial + c0 * blocks, n, per, vec);
    FALCON_CUDA_CHECK_LAUNCH("moments_partial_kernel");
  }
  moments_final_kernel<<<unsigned((c + 127) / 128), 128, 0, stream()>>>(x.data<float>(), partial,
                                                                        moments.data<float>(), c, n, int(blocks));
  FALCON_CUDA_CHECK_LAUNCH("moments_final_kernel");
}

void group_norm_affine(const Tensor& moments, const Tensor& weight, const Tensor& bias, int groups, float eps,
                       Tensor& scale, Tensor& shift) {
  const int64_t c = moments.dim(0);
  affine_kernel<<<unsigned((groups + 63) / 64), 64, 0, stream()>>>(moments.data<float>(), weight.data<float>(),
                                                                    bias.data<float>(), groups, c / groups, eps,
                                                                    scale.data<float>(), shift.data<float>());
  FALCON_CUDA_CHECK_LAUNCH("affine_kernel");
}

void group_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, int groups, float eps, bool silu,
                Tensor& out) {
  const int64_t c = x.dim(0);
  Tensor moments = Tensor::empty({c, 2}, DType::F32, x.device());
  Tensor scale = Tensor::empty({c}, DType::F32, x.device()), shift = Tensor::empty({c}, DType::F32, x.device());
  channel_moments(x, moments);
  group_norm_affine(moments, weight, bias, groups, eps, scale, shift);
  channel_affine(x, scale, shift, out, silu);
}

}  // namespace falcon::ops::cuda
