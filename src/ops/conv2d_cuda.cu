// CUDA conv2d as an implicit GEMM: out[Co, P] = W[Co, Ci k k] . patches[Ci k k, P], 64 x 64
// output tiles, K in steps of 16, 4 x 4 outputs per thread, f32 FMAs (SIMT). Patches are
// gathered on load (zero or reflect padding) and, for fused 1x1 convolutions, read through the
// per-channel affine map and SiLU. The output moments of a fusion come from channel_moments
// over the result. An in-place 1x1 (out aliasing x) goes through a temporary.
#include "ops/conv2d.h"
#include "ops/cuda_common.cuh"
#include "ops/group_norm.h"

namespace falcon::ops::cuda {
namespace {
constexpr int BM = 64, BN = 64, BK = 16;

__device__ __forceinline__ int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

__global__ void __launch_bounds__(256) conv_kernel(const float* x, const float* wt, const float* bias, float* out,
                                                   const float* in_scale, const float* in_shift, bool in_silu,
                                                   int64_t ci, int64_t H, int64_t W, int64_t co, int64_t Ho,
                                                   int64_t Wo, int kk, int pad, bool reflect_pad, bool accumulate) {
  __shared__ float As[BK][BM];
  __shared__ float Bs[BK][BN + 4];
  const int64_t K = ci * kk * kk, P = Ho * Wo;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += BK) {
    for (int e = tid; e < BM * BK; e += 256) {
      const int mm = e / BK, kq = e % BK;
      const int64_t m = m0 + mm, kx = k0 + kq;
      As[kq][mm] = m < co && kx < K ? wt[m * K + kx] : 0.f;
    }
    for (int e = tid; e < BN * BK; e += 256) {
      const int kq = e / BN, nn = e % BN;
      const int64_t kx = k0 + kq, n = n0 + nn;
      float val = 0.f;
      if (kx < K && n < P) {
        const int64_t i = kx / (kk * kk), dy = (kx / kk) % kk, dx = kx % kk;
        int64_t sy = n / Wo + dy - pad, sx = n % Wo + dx - pad;
        bool ok = true;
        if (reflect_pad) {
          sy = reflect(sy, H);
          sx = reflect(sx, W);
        } else {
          ok = sy >= 0 && sy < H && sx >= 0 && sx < W;
        }
        if (ok) {
          val = x[(i * H + sy) * W + sx];
          if (in_scale) {
            val = fmaf(val, in_scale[i], in_shift[i]);
            if (in_silu) val = val / (1.f + expf(-val));
          }
        }
      }
      Bs[kq][nn] = val;
    }
    __syncthreads();
#pragma unroll
    for (int kq = 0; kq < BK; ++kq) {
      float a[4], b[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) a[r] = As[kq][ty + 16 * r];
#pragma unroll
      for (int s = 0; s < 4; ++s) b[s] = Bs[kq][tx + 16 * s];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int s = 0; s < 4; ++s) acc[r][s] = fmaf(a[r], b[s], acc[r][s]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int64_t m = m0 + ty + 16 * r;
    if (m >= co) continue;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      const int64_t n = n0 + tx + 16 * s;
      if (n >= P) continue;
      float v = acc[r][s] + (bias ? bias[m] : 0.f);
      if (accumulate) v += out[m * P + n];
      out[m * P + n] = v;
    }
  }
}
}  // namespace

void conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, int padding, PadMode mode, Tensor& out,
            bool accumulate, const Conv2dFusion& fusion) {
  const int64_t ci = x.dim(0), H = x.dim(1), W = x.dim(2), co = w.dim(0), kk = w.dim(2);
  const int64_t Ho = out.dim(1), Wo = out.dim(2), P = Ho * Wo;
  if (P == 0 || co == 0) return;
  const bool aliased = out.raw() == x.raw();
  Tensor tmp;
  if (aliased) {
    tmp = Tensor::empty(out.shape(), DType::F32, out.device());
    if (accumulate) tmp.copy_from(out);
  }
  Tensor& dst = aliased ? tmp : out;
  const dim3 grid(unsigned((P + BN - 1) / BN), unsigned((co + BM - 1) / BM));
  conv_kernel<<<grid, 256, 0, stream()>>>(x.data<float>(), w.data<float>(), bias ? bias->data<float>() : nullptr,
                                          dst.data<float>(), fusion.in_scale ? fusion.in_scale->data<float>() : nullptr,
                                          fusion.in_shift ? fusion.in_shift->data<float>() : nullptr, fusion.in_silu,
                                          ci, H, W, co, Ho, Wo, int(kk), padding, mode == PadMode::Reflect, accumulate);
  FALCON_CUDA_CHECK_LAUNCH("conv_kernel");
  if (aliased) out.copy_from(tmp);
  if (fusion.out_moments) channel_moments(out, *fusion.out_moments);
}

}  // namespace falcon::ops::cuda
