// Squared-ReLU activations on CUDA, computed in f32 whatever the storage (relu(x)^2 overflows
// fp16 for |x| > 256; bf16 and f32 hold it).
#include "ops/activation.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float relu_sq(float v) {
  const float r = v > 0.f ? v : 0.f;
  return r * r;
}

// out[o] = relu(a[2o])^2 * a[2o + 1]: a row [2F] interleaves (gate, up), so output element o
// reads the two inputs at 2o and 2o+1 of the flat tensor, V outputs from 2V inputs at a time.
template <typename T, int V>
__global__ void squared_relu_gate_kernel(const T* a, T* out, int64_t packs) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    float in[2 * V], o[V];
    load_f32<T, 2 * V>(a + 2 * V * p, in);
#pragma unroll
    for (int i = 0; i < V; ++i) o[i] = relu_sq(in[2 * i]) * in[2 * i + 1];
    store_f32<T, V>(out + V * p, o);
  }
}

template <typename T, int V>
__global__ void squared_relu_kernel(const T* x, T* out, int64_t packs) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    float v[V];
    load_f32<T, V>(x + V * p, v);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = relu_sq(v[i]);
    store_f32<T, V>(out + V * p, v);
  }
}

}  // namespace

void squared_relu_gate(const Tensor& a, Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_float(a.dtype(), "squared_relu_gate", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (n % 4 == 0 && aligned_to(a.raw(), 8 * sizeof(T)) && aligned_to(out.raw(), 4 * sizeof(T))) {
      squared_relu_gate_kernel<T, 4><<<grid_for(n / 4, kThreads), kThreads, 0, stream()>>>(a.data<T>(), out.data<T>(), n / 4);
    } else {
      squared_relu_gate_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(a.data<T>(), out.data<T>(), n);
    }
    FALCON_CUDA_CHECK_LAUNCH("squared_relu_gate_kernel");
  });
}

void squared_relu(const Tensor& x, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "squared_relu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (n % 4 == 0 && aligned_to(x.raw(), 4 * sizeof(T)) && aligned_to(out.raw(), 4 * sizeof(T))) {
      squared_relu_kernel<T, 4><<<grid_for(n / 4, kThreads), kThreads, 0, stream()>>>(x.data<T>(), out.data<T>(), n / 4);
    } else {
      squared_relu_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x.data<T>(), out.data<T>(), n);
    }
    FALCON_CUDA_CHECK_LAUNCH("squared_relu_kernel");
  });
}

}  // namespace falcon::ops::cuda
