// Linear layers whose weights cuBLASLt cannot read directly, or not at f32 accuracy: F16, Q8 and
// Q4 weights, and F32 activations against BF16 weights. Weights are decoded to f32 in registers
// and every product and sum is an f32 FMA, so the result is the exact-weights product to f32
// rounding. Layout: linear_weight_cuda.h. Also here: the weights' expansion to the activation
// dtype for cuBLASLt (products of many rows) and the quantisation itself.
#include <cmath>
#include <string>
#include <type_traits>

#include "ops/cuda_common.cuh"
#include "ops/cuda_graph.h"
#include "ops/cuda_tuning.h"
#include "ops/linear_weight_cuda.h"
#include "ops/quantize.h"

namespace falcon::ops::cuda {

namespace {

// ---- weight readers: VEC consecutive k of row n as f32 -----------------------------------

// Each reader also loads a step's VEC weights undecoded (Raw<VEC>, a few registers) and decodes
// them later: the GEMV holds a whole row that way while it waits for its input.
template <typename T>
struct PlainWeight {
  const T* p;
  int64_t K;
  template <int VEC>
  using Raw = Pack<T, VEC>;
  template <int VEC>
  __device__ __forceinline__ void load(int64_t n, int64_t k, float (&o)[VEC]) const {
    load_f32<T, VEC>(p + n * K + k, o);
  }
  template <int VEC>
  __device__ __forceinline__ Raw<VEC> load_raw(int64_t n, int64_t k) const {
    return *reinterpret_cast<const Raw<VEC>*>(p + n * K + k);
  }
  template <int VEC>
  __device__ __forceinline__ void decode(const Raw<VEC>& r, float (&o)[VEC]) const {
#pragma unroll
    for (int i = 0; i < VEC; ++i) o[i] = to_f32(r.v[i]);
  }
  // Lane `lane` of a warp reading row n: its 128-byte line of the row's first 4 KB towards L2.
  __device__ __forceinline__ void prefetch(int64_t n, int lane) const {
    const int64_t per_line = 128 / int64_t(sizeof(T));
    if (lane * per_line < K) prefetch_l2(p + n * K + lane * per_line);
  }
};

struct Q8Weight {
  const int8_t* q;
  const float* scales;
  int64_t K;
  template <int VEC>
  struct Raw {
    int2 q;
    float s;
  };
  __device__ __forceinline__ void prefetch(int64_t, int) const {}
  template <int VEC>
  __device__ __forceinline__ Raw<VEC> load_raw(int64_t n, int64_t k) const {
    static_assert(VEC == 8, "Q8 holds 8 values per step");
    return {*reinterpret_cast<const int2*>(q + n * K + k), scales[n * (K / 32) + k / 32]};
  }
  template <int VEC>
  __device__ __forceinline__ void decode(const Raw<VEC>& r, float (&o)[VEC]) const {
    const int words[2] = {r.q.x, r.q.y};
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = float(int8_t(words[i / 4] >> (8 * (i % 4)))) * r.s;
  }
  template <int VEC>
  __device__ __forceinline__ void load(int64_t n, int64_t k, float (&o)[VEC]) const {
    static_assert(VEC == 8 || VEC == 1, "Q8 reads 8 values or 1");
    const float s = scales[n * (K / 32) + k / 32];
    if constexpr (VEC == 8) {
      const int2 raw = *reinterpret_cast<const int2*>(q + n * K + k);
      const int words[2] = {raw.x, raw.y};
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = float(int8_t(words[i / 4] >> (8 * (i % 4)))) * s;
    } else {
      o[0] = float(q[n * K + k]) * s;
    }
  }
};

struct Q4Weight {
  const uint8_t* q;
  const float* scales;
  int64_t K;
  template <int VEC>
  struct Raw {
    uint32_t q;
    float s;
  };
  __device__ __forceinline__ void prefetch(int64_t, int) const {}
  template <int VEC>
  __device__ __forceinline__ Raw<VEC> load_raw(int64_t n, int64_t k) const {
    static_assert(VEC == 8, "Q4 holds 8 values per step");
    return {*reinterpret_cast<const uint32_t*>(q + (n * K + k) / 2), scales[n * (K / 32) + k / 32]};
  }
  template <int VEC>
  __device__ __forceinline__ void decode(const Raw<VEC>& r, float (&o)[VEC]) const {
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = float(int((r.q >> (4 * i)) & 15u) - 8) * r.s;
  }
  template <int VEC>
  __device__ __forceinline__ void load(int64_t n, int64_t k, float (&o)[VEC]) const {
    static_assert(VEC == 8 || VEC == 1, "Q4 reads 8 values or 1");
    const float s = scales[n * (K / 32) + k / 32];
    if constexpr (VEC == 8) {
      const uint32_t raw = *reinterpret_cast<const uint32_t*>(q + (n * K + k) / 2);
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = float(int((raw >> (4 * i)) & 15u) - 8) * s;
    } else {
      const uint8_t b = q[(n * K + k) / 2];
      o[0] = float(int((k % 2 ? b >> 4 : b) & 15) - 8) * s;
    }
  }
};

__device__ __forceinline__ float epilogue(float v, const float* bias, int64_t n, float old, bool accumulate) {
  if (bias) v += bias[n];
  return accumulate ? v + old : v;
}

// ---- GEMV: up to 8 rows of x; one warp per output column n ---------------------------------

constexpr int kGemvMaxRows = 8;
constexpr int kGemvWarps = 8;
constexpr int kGemvSteps = 4;  // k-steps whose loads are all issued before the first FMA

// ROWS rows of x (compile-time, so the accumulators stay in registers). Each step a lane reads
// VEC consecutive weights.
// PRE > 0 (K <= PRE * 32 * VEC): the lane's whole share of the row is loaded, undecoded, into
// registers before pdl_wait(): the weights do not depend on the kernel before, so their DRAM
// latency overlaps that kernel's tail, and every load of the row is in flight at once.
// PRE == 0: kGemvSteps steps of weight loads in flight at a time, the row's first lines
// prefetched towards L2 before the wait.
template <typename TX, typename W, int VEC, int ROWS, int PRE>
__global__ void __launch_bounds__(kGemvWarps * 32) gemv_kernel(const TX* x, W w, const float* bias, TX* y,
                                                              int64_t N, int64_t K, bool accumulate,
                                                              bool early_trigger) {
  if (early_trigger) pdl_allow_dependents();
  const int64_t n = int64_t(blockIdx.x) * kGemvWarps + threadIdx.x / 32;
  if (n >= N) return;
  const int lane = threadIdx.x % 32;
  constexpr int64_t kStride = 32 * VEC;
  float s[ROWS];
#pragma unroll
  for (int m = 0; m < ROWS; ++m) s[m] = 0.f;
  if constexpr (PRE > 0) {
    typename W::template Raw<VEC> raw[PRE];
#pragma unroll
    for (int st = 0; st < PRE; ++st) {
      const int64_t k = int64_t(lane) * VEC + st * kStride;
      if (k < K) raw[st] = w.template load_raw<VEC>(n, k);
    }
    pdl_wait();
    if (!early_trigger) pdl_allow_dependents();
#pragma unroll
    for (int st = 0; st < PRE; ++st) {
      const int64_t k = int64_t(lane) * VEC + st * kStride;
      if (k < K) {
        float wv[VEC];
        w.template decode<VEC>(raw[st], wv);
#pragma unroll
        for (int m = 0; m < ROWS; ++m) {
          float xv[VEC];
          load_f32<TX, VEC>(x + m * K + k, xv);
#pragma unroll
          for (int i = 0; i < VEC; ++i) s[m] = fmaf(wv[i], xv[i], s[m]);
        }
      }
    }
  } else {
    w.prefetch(n, lane);  // weights do not depend on the kernel before (cuda_common.cuh: PDL)
    pdl_wait();
    if (!early_trigger) pdl_allow_dependents();
    for (int64_t k0 = int64_t(lane) * VEC; k0 < K; k0 += kGemvSteps * kStride) {
      float wv[kGemvSteps][VEC];
#pragma unroll
      for (int st = 0; st < kGemvSteps; ++st) {
        const int64_t k = k0 + st * kStride;
        if (k < K) {
          w.template load<VEC>(n, k, wv[st]);
        } else {
#pragma unroll
          for (int i = 0; i < VEC; ++i) wv[st][i] = 0.f;
        }
      }
#pragma unroll
      for (int st = 0; st < kGemvSteps; ++st) {
        const int64_t k = k0 + st * kStride;
        if (k < K) {
#pragma unroll
          for (int m = 0; m < ROWS; ++m) {
            float xv[VEC];
            load_f32<TX, VEC>(x + m * K + k, xv);
#pragma unroll
            for (int i = 0; i < VEC; ++i) s[m] = fmaf(wv[st][i], xv[i], s[m]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < ROWS; ++m) {
    const float v = warp_sum(s[m]);
    if (lane == 0) {
      TX* o = y + m * N + n;
      *o = from_f32<TX>(epilogue(v, bias, n, accumulate ? to_f32(*o) : 0.f, accumulate));
    }
  }
}

template <typename TX, typename W, int VEC, int ROWS>
void launch_gemv_rows(const TX* x, W w, const float* bias, TX* y, int64_t N, int64_t K, bool accumulate) {
  const unsigned blocks = unsigned((N + kGemvWarps - 1) / kGemvWarps);
  const dim3 block(kGemvWarps * 32);
  // Register preloading for the decode dtype (BF16 activations, 8-wide steps): rows of up to
  // 16 steps (K <= 4096 at 8 per lane), the sizes of every decode product but the logits' input
  // (which has K = D as well). F32 activations (the parity mode) stream.
  const int64_t steps = (K + 32 * VEC - 1) / (32 * VEC);
  if constexpr (VEC == 8 && std::is_same_v<TX, __nv_bfloat16>) {
    if (steps <= 4) {
      launch_dependent(gemv_kernel<TX, W, VEC, ROWS, 4>, dim3(blocks), block, 0, x, w, bias, y, N, K, accumulate,
                       linear_tuning().gemv_early_trigger);
      return;
    }
    if (steps <= 8) {
      launch_dependent(gemv_kernel<TX, W, VEC, ROWS, 8>, dim3(blocks), block, 0, x, w, bias, y, N, K, accumulate,
                       linear_tuning().gemv_early_trigger);
      return;
    }
    if (steps <= 16) {
      launch_dependent(gemv_kernel<TX, W, VEC, ROWS, 16>, dim3(blocks), block, 0, x, w, bias, y, N, K, accumulate,
                       linear_tuning().gemv_early_trigger);
      return;
    }
  }
  launch_dependent(gemv_kernel<TX, W, VEC, ROWS, 0>, dim3(blocks), block, 0, x, w, bias, y, N, K, accumulate,
                       linear_tuning().gemv_early_trigger);
}

template <typename TX, typename W, int VEC>
void launch_gemv(const TX* x, W w, const float* bias, TX* y, int M, int64_t N, int64_t K, bool accumulate) {
  // Rows in groups of 4, 2, 1 (each group one launch; decode batches are small).
  for (int m0 = 0; m0 < M;) {
    const int rows = M - m0 >= 4 ? 4 : M - m0 >= 2 ? 2 : 1;
    const TX* xm = x + m0 * K;
    TX* ym = y + m0 * N;
    if (rows == 4) {
      launch_gemv_rows<TX, W, VEC, 4>(xm, w, bias, ym, N, K, accumulate);
    } else if (rows == 2) {
      launch_gemv_rows<TX, W, VEC, 2>(xm, w, bias, ym, N, K, accumulate);
    } else {
      launch_gemv_rows<TX, W, VEC, 1>(xm, w, bias, ym, N, K, accumulate);
    }
    m0 += rows;
  }
  FALCON_CUDA_CHECK_LAUNCH("gemv_kernel");
}

// ---- tiled SIMT GEMM: 64 x 64 outputs per block, 4 x 4 per thread, k in steps of 32 ---------

constexpr int kTile = 64, kTileK = 32;

template <typename TX, typename W, int VEC>
__global__ void __launch_bounds__(256) gemm_kernel(const TX* x, W w, const float* bias, TX* y, int64_t M, int64_t N,
                                                   int64_t K, bool accumulate) {
  // k-major tiles so that the inner loop reads 4 rows / 4 columns as one float4 each.
  __shared__ __align__(16) float xs[kTileK][kTile + 4];
  __shared__ __align__(16) float ws[kTileK][kTile + 4];
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  const int tid = threadIdx.x;
  const int lr = tid / 4, lk = (tid % 4) * 8;  // this thread loads row lr, k lk .. lk+7 of each tile
  const int ty = tid / 16, tx = tid % 16;
  float c[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
    float xv[8], wv[8];
    const int64_t k = k0 + lk;
#pragma unroll
    for (int i = 0; i < 8; ++i) xv[i] = wv[i] = 0.f;
    if constexpr (VEC == 8) {
      if (k < K) {  // K % 8 == 0 on this path, so all 8 are inside
        if (m0 + lr < M) load_f32<TX, 8>(x + (m0 + lr) * K + k, xv);
        if (n0 + lr < N) w.template load<8>(n0 + lr, k, wv);
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        if (k + i < K) {
          float one[1];
          if (m0 + lr < M) {
            load_f32<TX, 1>(x + (m0 + lr) * K + k + i, one);
            xv[i] = one[0];
          }
          if (n0 + lr < N) {
            w.template load<1>(n0 + lr, k + i, one);
            wv[i] = one[0];
          }
        }
      }
    }
    __syncthreads();  // the previous step's reads are done
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      xs[lk + i][lr] = xv[i];
      ws[lk + i][lr] = wv[i];
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kTileK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&xs[kk][ty * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&ws[kk][tx * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) c[i][j] = fmaf(av[i], bv[j], c[i][j]);
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx * 4 + j;
      if (n >= N) continue;
      TX* o = y + m * N + n;
      *o = from_f32<TX>(epilogue(c[i][j], bias, n, accumulate ? to_f32(*o) : 0.f, accumulate));
    }
  }
}

template <typename TX, typename W>
void launch(const Tensor& x, W w, const float* bias, Tensor& y, bool accumulate, bool vec) {
  const int64_t M = x.dim(0), K = x.dim(1), N = y.dim(1);
  const TX* xp = x.data<TX>();
  TX* yp = y.data<TX>();
  if (M <= kGemvMaxRows) {
    if (vec) {
      launch_gemv<TX, W, 8>(xp, w, bias, yp, int(M), N, K, accumulate);
    } else {
      launch_gemv<TX, W, 1>(xp, w, bias, yp, int(M), N, K, accumulate);
    }
    return;
  }
  if ((M + kTile - 1) / kTile > 65535) throw Unsupported("linear (cuda): more than 4M rows");
  const dim3 grid(unsigned((N + kTile - 1) / kTile), unsigned((M + kTile - 1) / kTile));
  if (vec) {
    gemm_kernel<TX, W, 8><<<grid, 256, 0, stream()>>>(xp, w, bias, yp, M, N, K, accumulate);
  } else {
    gemm_kernel<TX, W, 1><<<grid, 256, 0, stream()>>>(xp, w, bias, yp, M, N, K, accumulate);
  }
  FALCON_CUDA_CHECK_LAUNCH("gemm_kernel");
}

template <typename TX>
void run(const Tensor& x, const Tensor& w, const float* bias, Tensor& y, bool accumulate) {
  const int64_t N = w.dim(0), K = w.dim(1);
  // 8-wide loads need K % 8 == 0 and 16-byte aligned rows of x (and of plain weights).
  const bool vec = K % 8 == 0 && aligned_to(x.raw(), 16) && aligned_to(w.raw(), 16);
  switch (w.dtype()) {
    case DType::F32: launch<TX>(x, PlainWeight<float>{w.data<float>(), K}, bias, y, accumulate, vec); break;
    case DType::BF16:
      launch<TX>(x, PlainWeight<__nv_bfloat16>{w.data<__nv_bfloat16>(), K}, bias, y, accumulate, vec);
      break;
    case DType::F16: launch<TX>(x, PlainWeight<__half>{w.data<__half>(), K}, bias, y, accumulate, vec); break;
    case DType::Q8: {
      const auto* q = w.data<int8_t>();
      const auto* s = reinterpret_cast<const float*>(q + N * K);
      launch<TX>(x, Q8Weight{q, s, K}, bias, y, accumulate, vec);
      break;
    }
    case DType::Q4: {
      const auto* q = w.data<uint8_t>();
      const auto* s = reinterpret_cast<const float*>(q + N * K / 2);
      launch<TX>(x, Q4Weight{q, s, K}, bias, y, accumulate, vec);
      break;
    }
    default: throw Unsupported(std::string("linear (cuda): weight dtype ") + dtype_name(w.dtype()));
  }
}

template <typename T>
__global__ void empty_k_kernel(const float* bias, T* y, int64_t M, int64_t N, bool accumulate) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = from_f32<T>(epilogue(0.f, bias, i % N, accumulate ? to_f32(y[i]) : 0.f, accumulate));
  }
}

// ---- expansion for cuBLASLt: rows of a weight decoded to the activation dtype -------------

template <typename TO, typename W, int VEC>
__global__ void expand_kernel(W w, int64_t n0, int64_t rows, int64_t K, TO* out) {
  const int64_t per_row = K / VEC, total = rows * per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / per_row, k = (i - r * per_row) * VEC;
    float v[VEC];
    w.template load<VEC>(n0 + r, k, v);
    store_f32<TO, VEC>(out + r * K + k, v);
  }
}

template <typename TO, typename W>
void launch_expand(W w, int64_t n0, int64_t rows, int64_t K, bool vec, void* out) {
  const int64_t items = rows * (vec ? K / 8 : K);
  if (vec) {
    expand_kernel<TO, W, 8><<<grid_for(items, 256), 256, 0, stream()>>>(w, n0, rows, K, static_cast<TO*>(out));
  } else {
    expand_kernel<TO, W, 1><<<grid_for(items, 256), 256, 0, stream()>>>(w, n0, rows, K, static_cast<TO*>(out));
  }
  FALCON_CUDA_CHECK_LAUNCH("expand_kernel");
}

// ---- quantisation on the device: quantize.h's numbers, one thread per block of 32 ----------

// The same f32 operations as quantize_block (IEEE division, round-half-even rint, the clamp), so
// every scale and q is the host's to the bit.
template <typename T>
__global__ void quantize_kernel(const T* w, int64_t N, int64_t K, bool q8, uint8_t* values, float* scales,
                                int* nonfinite) {
  const int64_t blocks = K / kQuantBlock;
  const float qmax = q8 ? 127.f : 7.f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * blocks;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / blocks, b = i - r * blocks;
    const T* src = w + r * K + b * kQuantBlock;
    float v[kQuantBlock];
    float amax = 0.f;
    bool finite = true;
#pragma unroll
    for (int j = 0; j < kQuantBlock; ++j) {
      v[j] = to_f32(src[j]);
      finite = finite && isfinite(v[j]);
      amax = fmaxf(amax, fabsf(v[j]));
    }
    if (!finite) atomicOr(nonfinite, 1);
    const float s = amax / qmax;
    scales[i] = s;
    int q[kQuantBlock];
#pragma unroll
    for (int j = 0; j < kQuantBlock; ++j) {
      const float rq = s > 0.f ? rintf(v[j] / s) : 0.f;
      q[j] = int(fminf(fmaxf(rq, -qmax), qmax));
    }
    if (q8) {
      uint8_t* dst = values + r * K + b * kQuantBlock;
#pragma unroll
      for (int j = 0; j < kQuantBlock; ++j) dst[j] = uint8_t(int8_t(q[j]));
    } else {
      uint8_t* dst = values + (r * K + b * kQuantBlock) / 2;
#pragma unroll
      for (int j = 0; j < kQuantBlock; j += 2) dst[j / 2] = uint8_t((q[j] + 8) | ((q[j + 1] + 8) << 4));
    }
  }
}

}  // namespace

void linear_dequant(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate) {
  const float* b = bias ? bias->data<float>() : nullptr;
  if (x.dtype() == DType::F32) {
    run<float>(x, w, b, y, accumulate);
  } else if (x.dtype() == DType::BF16) {
    run<__nv_bfloat16>(x, w, b, y, accumulate);
  } else {
    throw Unsupported(std::string("linear (cuda): activations in ") + dtype_name(x.dtype()));
  }
}

void linear_empty_k(const Tensor* bias, Tensor& y, bool accumulate) {
  const int64_t M = y.dim(0), N = y.dim(1);
  dispatch_float(y.dtype(), "linear", [&](auto tag) {
    using T = typename decltype(tag)::type;
    empty_k_kernel<T><<<grid_for(M * N, 256), 256, 0, stream()>>>(bias ? bias->data<float>() : nullptr,
                                                                  y.data<T>(), M, N, accumulate);
    FALCON_CUDA_CHECK_LAUNCH("empty_k_kernel");
  });
}

void expand_weight_rows(const Tensor& w, int64_t n0, int64_t n1, DType to, void* out) {
  const int64_t N = w.dim(0), K = w.dim(1), rows = n1 - n0;
  if (n0 < 0 || n1 > N || rows <= 0) throw InternalError("expand_weight_rows: rows out of range");
  if (to != DType::F32 && to != DType::BF16) throw InternalError("expand_weight_rows: F32 or BF16 only");
  const bool vec = K % 8 == 0 && aligned_to(w.raw(), 16) && aligned_to(out, 32);
  const auto expand = [&](auto weight) {
    using Weight = decltype(weight);
    if (to == DType::F32) {
      launch_expand<float, Weight>(weight, n0, rows, K, vec, out);
    } else {
      launch_expand<__nv_bfloat16, Weight>(weight, n0, rows, K, vec, out);
    }
  };
  switch (w.dtype()) {
    case DType::F32: expand(PlainWeight<float>{w.data<float>(), K}); break;
    case DType::BF16: expand(PlainWeight<__nv_bfloat16>{w.data<__nv_bfloat16>(), K}); break;
    case DType::F16: expand(PlainWeight<__half>{w.data<__half>(), K}); break;
    case DType::Q8: {
      const auto* q = w.data<int8_t>();
      expand(Q8Weight{q, reinterpret_cast<const float*>(q + N * K), K});
      break;
    }
    case DType::Q4: {
      const auto* q = w.data<uint8_t>();
      expand(Q4Weight{q, reinterpret_cast<const float*>(q + N * K / 2), K});
      break;
    }
    default: throw Unsupported(std::string("linear (cuda): weight dtype ") + dtype_name(w.dtype()));
  }
}

Tensor prepare_quantized_weight(const Tensor& w, DType dtype) {
  const int64_t N = w.dim(0), K = w.dim(1);
  // Uploaded as stored and quantised there: the host would spend seconds on a 0.6B model.
  const Tensor src = w.to(Device::CUDA);
  Tensor out = Tensor::empty({N, K}, dtype, Device::CUDA);
  Tensor nonfinite = Tensor::zeros({1}, DType::I32, Device::CUDA);
  const bool q8 = dtype == DType::Q8;
  auto* values = static_cast<uint8_t*>(out.raw());
  auto* scales = reinterpret_cast<float*>(values + (q8 ? N * K : N * K / 2));
  const int64_t items = N * (K / kQuantBlock);
  dispatch_float(src.dtype(), "prepare_linear_weight", [&](auto tag) {
    using T = typename decltype(tag)::type;
    quantize_kernel<T><<<grid_for(items, 128), 128, 0, stream()>>>(src.data<T>(), N, K, q8, values, scales,
                                                                   nonfinite.data<int>());
    FALCON_CUDA_CHECK_LAUNCH("quantize_kernel");
  });
  int flag = 0;
  download(&flag, nonfinite.raw(), sizeof(flag));  // waits: `src` is freed on return
  if (flag) {
    throw InvalidArgument(std::string("prepare_linear_weight: cannot quantise non-finite weights to ") +
                          dtype_name(dtype));
  }
  return out;
}

}  // namespace falcon::ops::cuda
