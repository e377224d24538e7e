// CUDA window_cross_attention: one thread per (head, output query pixel) with an online
// softmax over its key window (windows from attention_window on the host: exact float
// semantics), output head dims accumulated in registers/local memory.
#include <vector>

#include "ops/cuda_common.cuh"
#include "ops/window_cross_attention.h"

namespace falcon::ops::cuda {
namespace {
constexpr int kMaxDq = 256, kMaxDv = 256;

__global__ void wca_kernel(const float* q, const float* k, const float* v, float* out, const int32_t* rwin,
                           const int32_t* cwin, int heads, int64_t dq, int64_t dv, int64_t H, int64_t W, int64_t h,
                           int64_t w, int64_t Ho, int64_t Wo, float scale) {
  const int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (t >= int64_t(heads) * Ho * Wo) return;
  const int64_t hd = t / (Ho * Wo), y = (t / Wo) % Ho, x = t % Wo;
  float qv[kMaxDq], acc[kMaxDv];
  for (int64_t d = 0; d < dq; ++d) qv[d] = q[((hd * dq + d) * H + y) * W + x];
  for (int64_t e = 0; e < dv; ++e) acc[e] = 0.f;
  float mx = -3.4e38f, sum = 0.f;
  const int32_t rb = rwin[2 * y], re = rwin[2 * y + 1], cb = cwin[2 * x], ce = cwin[2 * x + 1];
  for (int32_t kr = rb; kr < re; ++kr) {
    for (int32_t kc = cb; kc < ce; ++kc) {
      const int64_t cell = int64_t(kr) * w + kc;
      float s = 0.f;
      for (int64_t d = 0; d < dq; ++d) s += qv[d] * k[(hd * dq + d) * h * w + cell];
      s *= scale;
      if (s > mx) {
        const float f = expf(mx - s);
        sum *= f;
        for (int64_t e = 0; e < dv; ++e) acc[e] *= f;
        mx = s;
      }
      const float p = expf(s - mx);
      sum += p;
      for (int64_t e = 0; e < dv; ++e) acc[e] += p * v[(hd * dv + e) * h * w + cell];
    }
  }
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  for (int64_t e = 0; e < dv; ++e) out[((hd * dv + e) * Ho + y) * Wo + x] = acc[e] * inv;
}
}  // namespace

void window_cross_attention(const Tensor& q, const Tensor& k, const Tensor& v, int heads, float ratio, float scale,
                            Tensor& out) {
  const int64_t dq = q.dim(0) / heads, dv = v.dim(0) / heads;
  const int64_t H = q.dim(1), W = q.dim(2), h = k.dim(1), w = k.dim(2), Ho = out.dim(1), Wo = out.dim(2);
  if (dq > kMaxDq || dv > kMaxDv) throw Unsupported("window_cross_attention on CUDA: head dims above 256");
  Tensor rw = Tensor::empty({Ho, 2}, DType::I32), cw = Tensor::empty({Wo, 2}, DType::I32);
  for (int64_t i = 0; i < Ho; ++i) {
    const KeyWindow kw = attention_window(i, H, h, ratio);
    rw.data<int32_t>()[2 * i] = int32_t(kw.begin);
    rw.data<int32_t>()[2 * i + 1] = int32_t(kw.end);
  }
  for (int64_t i = 0; i < Wo; ++i) {
    const KeyWindow kw = attention_window(i, W, w, ratio);
    cw.data<int32_t>()[2 * i] = int32_t(kw.begin);
    cw.data<int32_t>()[2 * i + 1] = int32_t(kw.end);
  }
  const Tensor drw = rw.to(out.device()), dcw = cw.to(out.device());
  const int64_t n = int64_t(heads) * Ho * Wo;
  wca_kernel<<<unsigned((n + 127) / 128), 128, 0, stream()>>>(q.data<float>(), k.data<float>(), v.data<float>(),
                                                               out.data<float>(), drw.data<int32_t>(),
                                                               dcw.data<int32_t>(), heads, dq, dv, H, W, h, w, Ho, Wo,
                                                               scale);
  FALCON_CUDA_CHECK_LAUNCH("wca_kernel");
  // The window tables are freed when this returns: wait for the kernel that reads them.
  FALCON_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

}  // namespace falcon::ops::cuda
