// Elementwise dtype conversion and addition on CUDA (f32 arithmetic, round to nearest even).
#include "ops/convert.h"
#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

namespace {

constexpr int kThreads = 256;

template <typename Tin, typename Tout, int V>
__global__ void convert_kernel(const Tin* x, Tout* y, int64_t packs) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    float v[V];
    load_f32<Tin, V>(x + V * p, v);
    store_f32<Tout, V>(y + V * p, v);
  }
}

template <typename T, int V>
__global__ void add_kernel(const T* a, const T* b, T* out, int64_t packs) {
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < packs; p += int64_t(gridDim.x) * blockDim.x) {
    float x[V], y[V];
    load_f32<T, V>(a + V * p, x);
    load_f32<T, V>(b + V * p, y);
#pragma unroll
    for (int i = 0; i < V; ++i) x[i] += y[i];
    store_f32<T, V>(out + V * p, x);
  }
}

}  // namespace

void convert(const Tensor& x, Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  if (x.dtype() == out.dtype()) {
    FALCON_CUDA_CHECK(cudaMemcpyAsync(out.raw(), x.raw(), x.nbytes(), cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  dispatch_float(x.dtype(), "convert", [&](auto in_tag) {
    using Tin = typename decltype(in_tag)::type;
    dispatch_float(out.dtype(), "convert", [&](auto out_tag) {
      using Tout = typename decltype(out_tag)::type;
      if (n % 4 == 0 && aligned_to(x.raw(), 4 * sizeof(Tin)) && aligned_to(out.raw(), 4 * sizeof(Tout))) {
        convert_kernel<Tin, Tout, 4><<<grid_for(n / 4, kThreads), kThreads, 0, stream()>>>(x.data<Tin>(), out.data<Tout>(), n / 4);
      } else {
        convert_kernel<Tin, Tout, 1><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(x.data<Tin>(), out.data<Tout>(), n);
      }
      FALCON_CUDA_CHECK_LAUNCH("convert_kernel");
    });
  });
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = a.numel();
  if (n == 0) return;
  dispatch_float(a.dtype(), "add", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const size_t al = 4 * sizeof(T);
    if (n % 4 == 0 && aligned_to(a.raw(), al) && aligned_to(b.raw(), al) && aligned_to(out.raw(), al)) {
      add_kernel<T, 4><<<grid_for(n / 4, kThreads), kThreads, 0, stream()>>>(a.data<T>(), b.data<T>(), out.data<T>(), n / 4);
    } else {
      add_kernel<T, 1><<<grid_for(n, kThreads), kThreads, 0, stream()>>>(a.data<T>(), b.data<T>(), out.data<T>(), n);
    }
    FALCON_CUDA_CHECK_LAUNCH("add_kernel");
  });
}

}  // namespace falcon::ops::cuda
