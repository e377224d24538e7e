// Row argmax on CUDA: one block per row, first index of the largest value, NaN never wins
// (an all-NaN row gives 0, as on the CPU).
#include "ops/argmax.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

namespace {

constexpr int kThreads = 1024;

struct Best {
  float v;
  int idx;
};

// True when candidate b beats a: larger value, or equal value at a smaller index; a NaN loses
// to any number and, among NaNs, the smaller index wins (so an all-NaN row yields 0).
__device__ __forceinline__ bool better(const Best& b, const Best& a) {
  const bool bn = b.v != b.v, an = a.v != a.v;
  if (bn != an) return an;
  if (bn) return b.idx < a.idx;
  return b.v > a.v || (b.v == a.v && b.idx < a.idx);
}

// A row of the vocabulary (65,536 logits) is read by one block: each thread keeps four
// 16-byte loads in flight so one pass takes a couple of memory round trips, not dozens.
template <typename T, int V>
__global__ void argmax_kernel(const T* x, int32_t* out, int64_t n) {
  pdl_allow_dependents();
  pdl_wait();  // x comes from the logits product (cuda_common.cuh: PDL)
  const T* row = x + int64_t(blockIdx.x) * n;
  Best best{__int_as_float(0x7fffffff), 0x7fffffff};  // a NaN at the largest index: loses to anything
  const int64_t packs = n / V;
  constexpr int U = 4;
  for (int64_t p0 = threadIdx.x; p0 < packs; p0 += int64_t(blockDim.x) * U) {
    float v[U][V];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t p = p0 + int64_t(u) * blockDim.x;
      if (p < packs) load_f32<T, V>(row + p * V, v[u]);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t p = p0 + int64_t(u) * blockDim.x;
      if (p < packs) {
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const Best c{v[u][i], int(p * V + i)};
          if (better(c, best)) best = c;
        }
      }
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Best c{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.idx, o)};
    if (better(c, best)) best = c;
  }
  __shared__ Best warp_best[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w) {
      if (better(warp_best[w], best)) best = warp_best[w];
    }
    out[blockIdx.x] = best.idx == 0x7fffffff ? 0 : best.idx;
  }
}

}  // namespace

void argmax(const Tensor& x, Tensor& out) {
  const int64_t R = x.dim(0), N = x.dim(1);
  if (R == 0) return;
  if (N > int64_t(0x7ffffffe)) throw Unsupported("argmax (cuda): rows longer than 2^31");
  dispatch_float(x.dtype(), "argmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int V = 16 / sizeof(T);
    if (N % V == 0 && aligned_to(x.raw(), 16)) {
      launch_dependent(argmax_kernel<T, V>, dim3(unsigned(R)), dim3(kThreads), 0, x.data<T>(), out.data<int32_t>(), N);
    } else {
      launch_dependent(argmax_kernel<T, 1>, dim3(unsigned(R)), dim3(kThreads), 0, x.data<T>(), out.data<int32_t>(), N);
    }
    FALCON_CUDA_CHECK_LAUNCH("argmax_kernel");
  });
}

}  // namespace falcon::ops::cuda
