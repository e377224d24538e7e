// Row argmax on CUDA: first index of the largest value, NaN never wins (an all-NaN row gives 0,
// as on the CPU). A few rows (the decode step's logits): each row split over up to 64 blocks,
// the last block of a row to finish reducing their bests (a single block per 65,536-wide row
// took 11 us in the decode graph: too few loads in flight). Many rows: one block per row.
#include <algorithm>

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

// The block's best, on every thread (threads a multiple of 32, at most kThreads; a second call
// in one kernel needs a barrier before it: the shared buffer is reused).
__device__ Best block_best(Best best) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Best c{__shfl_xor_sync(0xffffffffu, best.v, o), __shfl_xor_sync(0xffffffffu, best.idx, o)};
    if (better(c, best)) best = c;
  }
  __shared__ Best warp_best[kThreads / 32];
  if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = best;
  __syncthreads();
  best = warp_best[0];
  for (int w = 1; w < int(blockDim.x / 32); ++w) {
    if (better(warp_best[w], best)) best = warp_best[w];
  }
  return best;
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
  best = block_best(best);
  if (threadIdx.x == 0) out[blockIdx.x] = best.idx == 0x7fffffff ? 0 : best.idx;
}

constexpr int kSplitThreads = 256;
constexpr int kMaxSlices = 64;

// Grid (slices, rows): block (g, r) takes elements [g * slice, (g + 1) * slice) of row r (slice a
// multiple of V) and leaves its best in partial[r, g]; the row's last block to count itself done
// reduces the slices' bests. `better` is a total order, so the result is the one-block result.
template <typename T, int V>
__global__ void __launch_bounds__(kSplitThreads)
    argmax_split_kernel(const T* x, int32_t* out, int64_t n, int64_t slice, Best* partial, int* done) {
  pdl_allow_dependents();
  pdl_wait();  // x comes from the logits product (cuda_common.cuh: PDL)
  const int64_t r = blockIdx.y, g = blockIdx.x, G = gridDim.x;
  const T* row = x + r * n;
  const int64_t begin = g * slice, end = begin + slice < n ? begin + slice : n;
  Best best{__int_as_float(0x7fffffff), 0x7fffffff};
  for (int64_t p = begin + int64_t(threadIdx.x) * V; p < end; p += int64_t(blockDim.x) * V) {
    float v[V];
    load_f32<T, V>(row + p, v);
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const Best c{v[i], int(p + i)};
      if (better(c, best)) best = c;
    }
  }
  best = block_best(best);
  __shared__ bool is_last;
  if (threadIdx.x == 0) {
    partial[r * G + g] = best;
    __threadfence();  // the partial is visible device-wide before the block counts itself done
    is_last = atomicAdd(done + r, 1) == int(G) - 1;
    if (is_last) done[r] = 0;  // ready for the next launch (and graph replay)
  }
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  best = Best{__int_as_float(0x7fffffff), 0x7fffffff};
  if (threadIdx.x < G) {
    const Best* pr = partial + r * G + threadIdx.x;
    best = Best{__ldcg(&pr->v), __ldcg(&pr->idx)};
  }
  __syncthreads();  // block_best reuses its shared buffer
  best = block_best(best);
  if (threadIdx.x == 0) out[r] = best.idx == 0x7fffffff ? 0 : best.idx;
}

}  // namespace

void argmax(const Tensor& x, Tensor& out) {
  const int64_t R = x.dim(0), N = x.dim(1);
  if (R == 0) return;
  if (N > int64_t(0x7ffffffe)) throw Unsupported("argmax (cuda): rows longer than 2^31");
  dispatch_float(x.dtype(), "argmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int V = 16 / sizeof(T);
    const bool vec = N % V == 0 && aligned_to(x.raw(), 16);
    if (R < sm_count() && N >= 2 * kSplitThreads * V) {
      // Slices of whole vectors, at least a block's pass each, at most kMaxSlices per row.
      const int64_t unit = int64_t(kSplitThreads) * V;
      const int64_t G = std::min<int64_t>(kMaxSlices, (N + unit - 1) / unit);
      const int64_t slice = ((N + G - 1) / G + V - 1) / V * V;
      const int64_t g = (N + slice - 1) / slice;
      auto* partial = static_cast<Best*>(scratch(Scratch::ArgmaxPartials, size_t(R * g) * sizeof(Best)));
      auto* done = static_cast<int*>(scratch(Scratch::ArgmaxCounters, size_t(R) * sizeof(int)));
      const dim3 grid{unsigned(g), unsigned(R)};
      if (vec) {
        launch_dependent(argmax_split_kernel<T, V>, grid, dim3(kSplitThreads), 0, x.data<T>(), out.data<int32_t>(), N,
                         slice, partial, done);
      } else {
        launch_dependent(argmax_split_kernel<T, 1>, grid, dim3(kSplitThreads), 0, x.data<T>(), out.data<int32_t>(), N,
                         slice, partial, done);
      }
    } else if (vec) {
      launch_dependent(argmax_kernel<T, V>, dim3(unsigned(R)), dim3(kThreads), 0, x.data<T>(), out.data<int32_t>(), N);
    } else {
      launch_dependent(argmax_kernel<T, 1>, dim3(unsigned(R)), dim3(kThreads), 0, x.data<T>(), out.data<int32_t>(), N);
    }
    FALCON_CUDA_CHECK_LAUNCH("argmax_kernel");
  });
}

}  // namespace falcon::ops::cuda
