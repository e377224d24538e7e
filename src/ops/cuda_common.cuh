// Private helpers of the CUDA ops: error checks, element loads/stores in f32, dtype dispatch.
// Included only by src/ops/*_cuda.cu.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/cuda_context.h"

namespace falcon::ops::cuda {

// Turns a CUDA error into a typed exception naming the call: OutOfMemory for allocation
// failures, falcon::Error otherwise.
[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call);

inline void check_cuda(cudaError_t err, const char* call) {
  if (err != cudaSuccess) throw_cuda_error(err, call);
}

// The context's cuBLASLt handle and its workspace (one per device).
cublasLtHandle_t lt_handle();
void* lt_workspace(size_t* bytes);

}  // namespace falcon::ops::cuda

#define FALCON_CUDA_CHECK(call) ::falcon::ops::cuda::check_cuda((call), #call)
// After a kernel launch: reports bad launch configurations at once (no synchronisation).
#define FALCON_CUDA_CHECK_LAUNCH(kernel_name) ::falcon::ops::cuda::check_cuda(cudaGetLastError(), kernel_name)

namespace falcon::ops::cuda {

// ---- element access in f32 --------------------------------------------------------------

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}

// N consecutive elements moved as one aligned access (16 bytes for 8 bf16 or 4 floats).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T, int N>
__device__ __forceinline__ void load_f32(const T* p, float (&out)[N]) {
  const Pack<T, N> pk = *reinterpret_cast<const Pack<T, N>*>(p);
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = to_f32(pk.v[i]);
}

template <typename T, int N>
__device__ __forceinline__ void store_f32(T* p, const float (&in)[N]) {
  Pack<T, N> pk;
#pragma unroll
  for (int i = 0; i < N; ++i) pk.v[i] = from_f32<T>(in[i]);
  *reinterpret_cast<Pack<T, N>*>(p) = pk;
}

// Weights: read once, never written in a launch: no L1 allocation.
__device__ __forceinline__ uint4 ld_weights(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// v as the bf16 store would leave it.
__device__ __forceinline__ float bf16_round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// 16 bytes of T as floats.
template <typename T>
__device__ __forceinline__ void unpack16(const uint4& r, float (&f)[16 / sizeof(T)]) {
  const uint32_t w[4] = {r.x, r.y, r.z, r.w};
  if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) f[i] = __uint_as_float(w[i]);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // bf16 -> f32 is a shift: element 2i sits in the low half of word i.
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      f[2 * i] = __uint_as_float(w[i] << 16);
      f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 x = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = x.x;
      f[2 * i + 1] = x.y;
    }
  }
}

// 16 bytes of T from floats (rounded to nearest).
template <typename T>
__device__ __forceinline__ uint4 pack16(const float (&f)[16 / sizeof(T)]) {
  uint32_t w[4];
  if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = __float_as_uint(f[i]);
  } else {
    const auto bits = [](float x) -> uint32_t {
      if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        return __bfloat16_as_ushort(__float2bfloat16_rn(x));
      } else {
        return __half_as_ushort(__float2half_rn(x));
      }
    };
#pragma unroll
    for (int i = 0; i < 4; ++i) w[i] = bits(f[2 * i]) | (bits(f[2 * i + 1]) << 16);
  }
  return make_uint4(w[0], w[1], w[2], w[3]);
}

// The GPU's global nanosecond clock (the kernels' optional traces).
__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- host side ----------------------------------------------------------------------------

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with T the CUDA element type of a float dtype.
template <typename F>
void dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(TypeTag<float>{}); break;
    case DType::BF16: f(TypeTag<__nv_bfloat16>{}); break;
    case DType::F16: f(TypeTag<__half>{}); break;
    default: throw Unsupported(std::string(op) + " (cuda): dtype " + dtype_name(t) + " is not supported");
  }
}

inline bool aligned_to(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// ---- programmatic dependent launch (Hopper) -----------------------------------------------
// A decode step is ~250 small kernels in a row; with programmatic dependent launch a kernel's
// blocks start while the previous kernel drains, prefetch what does not depend on it (the
// GEMVs' weights), and wait for it only where its results are read. Rules for a kernel
// launched with launch_dependent(): call pdl_wait() before reading anything an earlier kernel
// wrote and before writing anything an earlier kernel reads; it may call
// pdl_allow_dependents() at its start (the next kernel is still held at its own pdl_wait()
// until this one has finished and its writes are visible).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
// Starts fetching a global line into L2 (no register, no wait): for data that no earlier
// kernel writes, before pdl_wait().
__device__ __forceinline__ void prefetch_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// True when kernels may be launched as programmatic dependents: sm_90 or newer and
// FALCON_CUDA_PDL is not 0.
bool pdl_enabled();

// kernel<<<grid, block, smem, stream()>>>(args...), as a programmatic dependent of the kernel
// before it when pdl_enabled() (the kernel must follow the rules above).
template <typename... Params, typename... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream();
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  check_cuda(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...), "cudaLaunchKernelEx");
}

// Blocks for a grid-stride loop over n items: enough to fill the GPU, no more.
inline int grid_for(int64_t n, int threads) {
  const int64_t want = (n + threads - 1) / threads;
  const int64_t cap = int64_t(sm_count()) * 8;
  return int(want < 1 ? 1 : (want < cap ? want : cap));
}

}  // namespace falcon::ops::cuda
