// CUDA GroupNorm pieces: per-channel moments (block per channel, double sums of values shifted
// by the channel's first element, as the CPU), the group affine fold, and the full norm.
#include "ops/channel_affine.h"
#include "ops/cuda_common.cuh"
#include "ops/group_norm.h"

namespace falcon::ops::cuda {
namespace {
constexpr int kThreads = 512;

__global__ void moments_kernel(const float* x, float* m, int64_t n) {
  const int64_t ch = blockIdx.x;
  const float* row = x + ch * n;
  const float s0 = n ? row[0] : 0.f;
  double s = 0, q = 0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const double d = double(row[i]) - s0;
    s += d;
    q += d * d;
  }
  __shared__ double ss[kThreads], sq[kThreads];
  ss[threadIdx.x] = s;
  sq[threadIdx.x] = q;
  __syncthreads();
  for (int step = kThreads / 2; step > 0; step /= 2) {
    if (int(threadIdx.x) < step) {
      ss[threadIdx.x] += ss[threadIdx.x + step];
      sq[threadIdx.x] += sq[threadIdx.x + step];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const double mean = n ? ss[0] / double(n) : 0.0;
    m[2 * ch] = float(s0 + mean);
    m[2 * ch + 1] = n ? float(fmax(0.0, sq[0] / double(n) - mean * mean)) : 0.f;
  }
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
  moments_kernel<<<unsigned(c), kThreads, 0, stream()>>>(x.data<float>(), moments.data<float>(), n);
  FALCON_CUDA_CHECK_LAUNCH("moments_kernel");
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
