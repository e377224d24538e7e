// CUDA window_cross_attention, f32 throughout (both precision modes).
//
// Tiled kernel (q/k head dim <= 32, v head dim <= 64, zero-padded to those): block per (head,
// 16 x 16 tile of output queries), thread per query. The keys of the tile's window union
// (about 16 x 16 cells for AnyUp's 8x upsampling) go through shared memory in chunks of 64 (K
// and V rows per key, read by every thread as broadcasts); each thread runs an online softmax
// over the keys of its own window, and a warp skips a key that none of its queries sees. The
// running maximum is only moved when a score exceeds it by more than 8 (the exponentials stay
// below e^8, far from overflow, and the final division by the same sum is exact), so the
// accumulator is rarely rescaled.
// Other head dims: the thread-per-query loop (windows from attention_window on the host: exact
// float semantics; both kernels read the same tables).
#include <climits>
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

constexpr int kTile = 16, kChunk = 64, kThreads = kTile * kTile;
constexpr float kRescaleMargin = 8.f;

template <int DQ, int DV>
__global__ void __launch_bounds__(kThreads, 2)
    wca_tiled_kernel(const float* q, const float* k, const float* v, float* out, const int32_t* rwin,
                     const int32_t* cwin, int dq, int dv, int H, int W, int h, int w, int Ho, int Wo, float scale) {
  constexpr int KST = DQ + 4, VST = DV + 4;  // row strides: 16-byte aligned rows
  __shared__ __align__(16) float ks[kChunk * KST];
  __shared__ __align__(16) float vs[kChunk * VST];
  __shared__ int uni[4];  // the tile's window union: rows [0], [1), columns [2], [3)
  const int head = blockIdx.z, ty0 = blockIdx.y * kTile, tx0 = blockIdx.x * kTile, tid = threadIdx.x;
  const int y = ty0 + tid / kTile, x = tx0 + tid % kTile;
  const bool valid = y < Ho && x < Wo;
  if (tid == 0) {
    int rb = INT_MAX, re = 0, cb = INT_MAX, ce = 0;
    for (int i = ty0; i < min(ty0 + kTile, Ho); ++i) {
      rb = min(rb, rwin[2 * i]);
      re = max(re, rwin[2 * i + 1]);
    }
    for (int i = tx0; i < min(tx0 + kTile, Wo); ++i) {
      cb = min(cb, cwin[2 * i]);
      ce = max(ce, cwin[2 * i + 1]);
    }
    uni[0] = rb;
    uni[1] = max(re, rb);
    uni[2] = cb;
    uni[3] = max(ce, cb);
  }
  float qv[DQ];
  const size_t qplane = size_t(H) * W, kplane = size_t(h) * w;
#pragma unroll
  for (int d = 0; d < DQ; ++d)
    qv[d] = valid && d < dq ? q[size_t(head * dq + d) * qplane + size_t(y) * W + x] * scale : 0.f;
  int qrb = 0, qre = 0, qcb = 0, qce = 0;
  if (valid) {
    qrb = rwin[2 * y];
    qre = rwin[2 * y + 1];
    qcb = cwin[2 * x];
    qce = cwin[2 * x + 1];
  }
  __syncthreads();
  const int rb = uni[0], cb = uni[2], nc = uni[3] - cb, n_keys = (uni[1] - rb) * nc;

  float acc[DV];
#pragma unroll
  for (int e = 0; e < DV; ++e) acc[e] = 0.f;
  float mx = -INFINITY, sum = 0.f;
  for (int u0 = 0; u0 < n_keys; u0 += kChunk) {
    const int n = min(kChunk, n_keys - u0);
    __syncthreads();  // the previous chunk is consumed
    for (int idx = tid; idx < kChunk * DQ; idx += kThreads) {
      const int u = idx % kChunk, d = idx / kChunk;
      float val = 0.f;
      if (u < n && d < dq) {
        const int uu = u0 + u, kr = rb + uu / nc, kc = cb + uu % nc;
        val = k[size_t(head * dq + d) * kplane + size_t(kr) * w + kc];
      }
      ks[u * KST + d] = val;
    }
    for (int idx = tid; idx < kChunk * DV; idx += kThreads) {
      const int u = idx % kChunk, e = idx / kChunk;
      float val = 0.f;
      if (u < n && e < dv) {
        const int uu = u0 + u, kr = rb + uu / nc, kc = cb + uu % nc;
        val = v[size_t(head * dv + e) * kplane + size_t(kr) * w + kc];
      }
      vs[u * VST + e] = val;
    }
    __syncthreads();
    int kr = rb + u0 / nc, kc = cb + u0 % nc;
    for (int u = 0; u < n; ++u) {
      const bool in = valid && kr >= qrb && kr < qre && kc >= qcb && kc < qce;
      if (__any_sync(0xffffffffu, in)) {
        const float4* kp = reinterpret_cast<const float4*>(ks + u * KST);
        float s = 0.f;
#pragma unroll
        for (int d4 = 0; d4 < DQ / 4; ++d4) {
          const float4 kv = kp[d4];
          s = fmaf(qv[4 * d4], kv.x, s);
          s = fmaf(qv[4 * d4 + 1], kv.y, s);
          s = fmaf(qv[4 * d4 + 2], kv.z, s);
          s = fmaf(qv[4 * d4 + 3], kv.w, s);
        }
        if (in) {
          if (s > mx + kRescaleMargin) {  // the first key of the window, or a far larger score
            const float f = expf(mx - s);
            sum *= f;
#pragma unroll
            for (int e = 0; e < DV; ++e) acc[e] *= f;
            mx = s;
          }
          const float pw = expf(s - mx);
          sum += pw;
          const float4* vp = reinterpret_cast<const float4*>(vs + u * VST);
#pragma unroll
          for (int e4 = 0; e4 < DV / 4; ++e4) {
            const float4 vv = vp[e4];
            acc[4 * e4] = fmaf(pw, vv.x, acc[4 * e4]);
            acc[4 * e4 + 1] = fmaf(pw, vv.y, acc[4 * e4 + 1]);
            acc[4 * e4 + 2] = fmaf(pw, vv.z, acc[4 * e4 + 2]);
            acc[4 * e4 + 3] = fmaf(pw, vv.w, acc[4 * e4 + 3]);
          }
        }
      }
      if (++kc == cb + nc) {
        kc = cb;
        ++kr;
      }
    }
  }
  if (!valid) return;
  const float inv = sum > 0.f ? 1.f / sum : 0.f;
  const size_t oplane = size_t(Ho) * Wo;
#pragma unroll
  for (int e = 0; e < DV; ++e) {
    if (e < dv) out[size_t(head * dv + e) * oplane + size_t(y) * Wo + x] = acc[e] * inv;
  }
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
  const int64_t limit = int64_t(1) << 31;
  if (dq <= 32 && dv <= 64 && q.numel() < limit && v.numel() < limit && out.numel() < limit) {
    const dim3 grid(unsigned((Wo + kTile - 1) / kTile), unsigned((Ho + kTile - 1) / kTile), unsigned(heads));
    wca_tiled_kernel<32, 64><<<grid, kThreads, 0, stream()>>>(
        q.data<float>(), k.data<float>(), v.data<float>(), out.data<float>(), drw.data<int32_t>(),
        dcw.data<int32_t>(), int(dq), int(dv), int(H), int(W), int(h), int(w), int(Ho), int(Wo), scale);
    FALCON_CUDA_CHECK_LAUNCH("wca_tiled_kernel");
  } else {
    const int64_t n = int64_t(heads) * Ho * Wo;
    wca_kernel<<<unsigned((n + 127) / 128), 128, 0, stream()>>>(q.data<float>(), k.data<float>(), v.data<float>(),
                                                                 out.data<float>(), drw.data<int32_t>(),
                                                                 dcw.data<int32_t>(), heads, dq, dv, H, W, h, w, Ho,
                                                                 Wo, scale);
    FALCON_CUDA_CHECK_LAUNCH("wca_kernel");
  }
  // The window tables are freed when this returns: wait for the kernel that reads them.
  FALCON_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

}  // namespace falcon::ops::cuda
