// CUDA channel norms: one thread per pixel, channels looped (coalesced across pixels).
#include "ops/channel_norm.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {
namespace {
__global__ void channel_norm_kernel(const float* x, const float* weight, float* out, int64_t c, int64_t n,
                                    float eps, bool rms) {
  const int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (p >= n) return;
  float ss = 0.f;
  for (int64_t ch = 0; ch < c; ++ch) {
    const float v = x[ch * n + p];
    ss += v * v;
  }
  const float f = rms ? 1.f / sqrtf(ss * (1.f / float(c)) + eps) : 1.f / fmaxf(sqrtf(ss), eps);
  for (int64_t ch = 0; ch < c; ++ch) out[ch * n + p] = x[ch * n + p] * f * (weight ? weight[ch] : 1.f);
}

void run(const Tensor& x, const float* weight, float eps, bool rms, Tensor& out) {
  const int64_t c = x.dim(0), n = c ? x.numel() / c : 0;
  if (n == 0) return;
  channel_norm_kernel<<<unsigned((n + 127) / 128), 128, 0, stream()>>>(x.data<float>(), weight, out.data<float>(), c,
                                                                        n, eps, rms);
  FALCON_CUDA_CHECK_LAUNCH("channel_norm_kernel");
}
}  // namespace

void channel_l2_normalize(const Tensor& x, float eps, Tensor& out) { run(x, nullptr, eps, false, out); }

void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  run(x, weight.data<float>(), eps, true, out);
}

}  // namespace falcon::ops::cuda
