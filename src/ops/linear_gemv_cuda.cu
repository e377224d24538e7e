// The decode step's GEMV for BF16 activations x BF16 weights (a few rows of x), with the
// sub-block's input transform folded in: rms_norm (weightless) before wqkv and w13, the
// squared-ReLU gate before w2. At one row a decode sub-block is bandwidth- and latency-bound;
// running the transform inside the product saves a kernel (~3 us on the H100) per sub-block.
//
// Layout: as the plain GEMV (linear_dequant_cuda.cu), one warp per output column over the whole
// K; up to K = 4096 the lane's share of the row (16 bytes per 256 k) is held in registers,
// loaded before the kernel waits for its input. (Splitting K over several warps per column,
// with partial sums meeting in shared memory, measured slower on the H100: the barrier and the
// extra blocks cost more than the added loads in flight gained, e.g. 82 vs 45 us for the
// 65536 x 1024 logits.)
#include <string>

#include "ops/cuda_common.cuh"
#include "ops/cuda_tuning.h"
#include "ops/linear.h"

namespace falcon::ops::cuda {

namespace {

using bf16 = __nv_bfloat16;

enum class Transform { RmsNorm, Gate };

constexpr int kWarps = 8;
constexpr int kSteps = 4;    // 16-byte weight loads in flight per lane
constexpr int kMaxRows = 4;  // rows of x per launch (accumulators stay in registers)

// Eight transformed inputs x'[m, k .. k+8), rounded to bf16 as the unfused op would store them.
template <Transform T>
__device__ __forceinline__ void input8(const bf16* x, int64_t row_stride, int m, int64_t k, float inv, float (&o)[8]) {
  if constexpr (T == Transform::Gate) {
    float lo[8], hi[8];  // interleaved (gate, up) pairs for k .. k+4 and k+4 .. k+8
    load_f32<bf16, 8>(x + m * row_stride + 2 * k, lo);
    load_f32<bf16, 8>(x + m * row_stride + 2 * k + 8, hi);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float g0 = fmaxf(lo[2 * i], 0.f), g1 = fmaxf(hi[2 * i], 0.f);
      o[i] = to_f32(from_f32<bf16>(g0 * g0 * lo[2 * i + 1]));
      o[i + 4] = to_f32(from_f32<bf16>(g1 * g1 * hi[2 * i + 1]));
    }
  } else {
    load_f32<bf16, 8>(x + m * row_stride + k, o);
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = to_f32(from_f32<bf16>(o[i] * inv));
  }
}

// PRE > 0 (K <= PRE * 256): the lane's whole share of the weight row is loaded into registers
// before pdl_wait() (the weights do not depend on the kernel before: their DRAM latency overlaps
// its tail, and all of the row's loads are in flight at once). PRE == 0: the row streams,
// kSteps loads in flight, its first lines prefetched towards L2 before the wait.
//
// staged (when the launch gives it ROWS * K bf16 of shared memory): the block computes the K
// transformed inputs of each row once, into shared memory, and its warps read them from there
// (the same arithmetic, so the same bits). Each warp computing all K of them itself (for the
// gate a squared ReLU, a product and two roundings per input) made the down product's warps
// issue ~3x the instructions, with 156 registers leaving 2 warps per scheduler to hide them
// (Nsight Compute, docs/cuda.md Phase 10).
// MINB: blocks per SM the registers must allow (2: at most 128 a thread).
template <Transform T, int ROWS, int PRE, int MINB = 1>
__global__ void __launch_bounds__(kWarps * 32, MINB)
    fused_gemv_kernel(const bf16* x, int64_t row_stride, const bf16* w, const float* bias, bf16* y, int64_t N,
                      int64_t K, bool accumulate, float eps, bool early_trigger, bool staged) {
  if (early_trigger) pdl_allow_dependents();
  const int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  const bool active = n < N;  // (no early return: every warp takes part in the staging)
  const int lane = threadIdx.x % 32;
  const bf16* wr = w + (active ? n : 0) * K;
  Pack<bf16, 8> pre[PRE > 0 ? PRE : 1];
  if constexpr (PRE > 0) {
#pragma unroll
    for (int st = 0; st < PRE; ++st) {
      const int64_t k = int64_t(lane) * 8 + st * 256;
      if (active && k < K) pre[st] = *reinterpret_cast<const Pack<bf16, 8>*>(wr + k);
    }
  } else {
    if (active && int64_t(lane) * 64 < K) prefetch_l2(wr + lane * 64);
  }
  pdl_wait();
  if (!early_trigger) pdl_allow_dependents();
  extern __shared__ __align__(16) unsigned char gemv_smem[];
  bf16* xs = reinterpret_cast<bf16*>(gemv_smem);  // staged: [ROWS][K] transformed inputs
  __shared__ float inv_s[ROWS];
  if (staged) {
    if constexpr (T == Transform::RmsNorm) {
      // Warp 0 takes each row's sum of squares, in the order every warp takes it unstaged.
      if (threadIdx.x < 32) {
#pragma unroll
        for (int m = 0; m < ROWS; ++m) {
          float ss = 0.f;
          for (int64_t k = int64_t(lane) * 8; k < K; k += 256) {
            float v[8];
            load_f32<bf16, 8>(x + m * row_stride + k, v);
#pragma unroll
            for (int i = 0; i < 8; ++i) ss += v[i] * v[i];
          }
          ss = warp_sum(ss);
          if (lane == 0) inv_s[m] = 1.0f / sqrtf(ss / float(K) + eps);
        }
      }
      __syncthreads();
    }
    for (int64_t k = int64_t(threadIdx.x) * 8; k < K; k += kWarps * 32 * 8) {
#pragma unroll
      for (int m = 0; m < ROWS; ++m) {
        float g[8];
        input8<T>(x, row_stride, m, k, T == Transform::RmsNorm ? inv_s[m] : 1.f, g);
        store_f32<bf16, 8>(xs + m * K + k, g);
      }
    }
    __syncthreads();
  }
  if (!active) return;
  float inv[ROWS];
#pragma unroll
  for (int m = 0; m < ROWS; ++m) {
    inv[m] = 1.f;
    if (T == Transform::RmsNorm && !staged) {
      // Unstaged, each warp takes the row's sum of squares itself (x is 2 KB, in L1 after the
      // first warp). f32, IEEE sqrt and division, as rms_norm.
      float ss = 0.f;
      for (int64_t k = int64_t(lane) * 8; k < K; k += 256) {
        float v[8];
        load_f32<bf16, 8>(x + m * row_stride + k, v);
#pragma unroll
        for (int i = 0; i < 8; ++i) ss += v[i] * v[i];
      }
      inv[m] = 1.0f / sqrtf(warp_sum(ss) / float(K) + eps);
    }
  }
  float s[ROWS];
#pragma unroll
  for (int m = 0; m < ROWS; ++m) s[m] = 0.f;
  // One step of 8 weights against the 8 transformed inputs of every row.
  const auto step = [&](int64_t k, const float (&wv)[8]) {
#pragma unroll
    for (int m = 0; m < ROWS; ++m) {
      float xv[8];
      if (staged) {
        load_f32<bf16, 8>(xs + m * K + k, xv);
      } else {
        input8<T>(x, row_stride, m, k, inv[m], xv);
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) s[m] = fmaf(wv[i], xv[i], s[m]);
    }
  };
  if constexpr (PRE > 0) {
#pragma unroll
    for (int st = 0; st < PRE; ++st) {
      const int64_t k = int64_t(lane) * 8 + st * 256;
      if (k < K) {
        float wv[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) wv[i] = to_f32(pre[st].v[i]);
        step(k, wv);
      }
    }
  } else {
    for (int64_t k0 = int64_t(lane) * 8; k0 < K; k0 += kSteps * 256) {
      float wv[kSteps][8];
#pragma unroll
      for (int st = 0; st < kSteps; ++st) {
        const int64_t k = k0 + st * 256;
        if (k < K) load_f32<bf16, 8>(wr + k, wv[st]);
      }
#pragma unroll
      for (int st = 0; st < kSteps; ++st) {
        const int64_t k = k0 + st * 256;
        if (k < K) step(k, wv[st]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < ROWS; ++m) {
    float v = warp_sum(s[m]);
    if (lane == 0) {
      if (bias) v += bias[n];
      bf16* o = y + m * N + n;
      if (accumulate) v += to_f32(*o);
      *o = from_f32<bf16>(v);
    }
  }
}

template <Transform T, int ROWS>
void launch(const bf16* x, int64_t row_stride, const bf16* w, const float* bias, bf16* y, int64_t N, int64_t K,
            bool accumulate, float eps) {
  const unsigned blocks = unsigned((N + kWarps - 1) / kWarps);
  const int64_t steps = (K + 255) / 256;
  // The transformed inputs staged in shared memory where they fit the default 48 KB (K <= 6,144
  // at 4 rows).
  const size_t smem = size_t(ROWS) * size_t(K) * sizeof(bf16);
  const LinearTuning t = linear_tuning();
  const bool staged = (T == Transform::Gate ? t.gemv_stage_gate : t.gemv_stage_norm) && smem <= (48u << 10);
  const auto go = [&](auto kernel) {
    launch_dependent(kernel, dim3(blocks), dim3(kWarps * 32), staged ? smem : 0, x, row_stride, w, bias, y, N, K,
                     accumulate, eps, t.gemv_early_trigger, staged);
  };
  if (steps <= 4) {
    go(fused_gemv_kernel<T, ROWS, 4>);
  } else if (steps <= 8) {
    go(fused_gemv_kernel<T, ROWS, 8>);
  } else if (steps <= 16) {
    // One row of at most 12 steps (the down products, K = 2,304 or 3,072): registers for two
    // blocks per SM where the tuning asks for it.
    bool two = false;
    if constexpr (ROWS == 1) {
      two = steps <= 12 && t.gemv_two_blocks;
      if (two) go(fused_gemv_kernel<T, ROWS, 12, 2>);
    }
    if (!two) go(fused_gemv_kernel<T, ROWS, 16>);
  } else {
    go(fused_gemv_kernel<T, ROWS, 0>);
  }
  FALCON_CUDA_CHECK_LAUNCH("fused_gemv_kernel");
}

template <Transform T>
void launch_rows(const bf16* x, int64_t row_stride, const bf16* w, const float* bias, bf16* y, int64_t M, int64_t N,
                 int64_t K, bool accumulate, float eps) {
  switch (M) {
    case 1: launch<T, 1>(x, row_stride, w, bias, y, N, K, accumulate, eps); break;
    case 2: launch<T, 2>(x, row_stride, w, bias, y, N, K, accumulate, eps); break;
    case 3: launch<T, 3>(x, row_stride, w, bias, y, N, K, accumulate, eps); break;
    default: launch<T, 4>(x, row_stride, w, bias, y, N, K, accumulate, eps); break;
  }
}

}  // namespace

bool linear_fused(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate,
                  const LinearPrologue& prologue) {
  const int64_t M = y.dim(0), N = w.dim(0), K = w.dim(1);
  if (x.dtype() != DType::BF16 || w.dtype() != DType::BF16 || M < 1 || M > kMaxRows || K % 8 != 0) return false;
  if (!aligned_to(x.raw(), 16) || !aligned_to(w.raw(), 16) || x.dim(1) % 8 != 0) return false;
  const float* b = bias ? bias->data<float>() : nullptr;
  if (prologue.kind == LinearPrologue::Kind::RmsNorm) {
    launch_rows<Transform::RmsNorm>(x.data<bf16>(), x.dim(1), w.data<bf16>(), b, y.data<bf16>(), M, N, K, accumulate,
                                    prologue.eps);
  } else {
    launch_rows<Transform::Gate>(x.data<bf16>(), x.dim(1), w.data<bf16>(), b, y.data<bf16>(), M, N, K, accumulate,
                                 0.f);
  }
  return true;
}

}  // namespace falcon::ops::cuda
