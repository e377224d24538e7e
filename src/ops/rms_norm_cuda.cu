// RMSNorm on CUDA: one warp per row, sums of squares in f32, 16-byte loads where aligned.
#include "ops/cuda_common.cuh"
#include "ops/rms_norm.h"

namespace falcon::ops::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;

template <typename T, int V>
__global__ void rms_norm_kernel(const T* x, const float* w, T* out, int64_t rows, int n, float eps) {
  pdl_allow_dependents();
  pdl_wait();  // x comes from the kernel before (cuda_common.cuh: PDL)
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;
  const int lane = threadIdx.x % 32;
  const T* xr = x + row * n;
  T* orow = out + row * n;
  float ss = 0.f;
  for (int j = lane * V; j < n; j += 32 * V) {
    float v[V];
    load_f32<T, V>(xr + j, v);
#pragma unroll
    for (int i = 0; i < V; ++i) ss += v[i] * v[i];
  }
  ss = warp_sum(ss);
  // IEEE sqrt and division (not rsqrtf): F32 mode must match the CPU to ~1e-7.
  const float inv = 1.0f / sqrtf(ss / float(n) + eps);
  for (int j = lane * V; j < n; j += 32 * V) {
    float v[V];
    load_f32<T, V>(xr + j, v);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = w ? v[i] * inv * w[j + i] : v[i] * inv;
    store_f32<T, V>(orow + j, v);
  }
}

template <typename T, int V>
void launch(const Tensor& x, const Tensor* weight, float eps, Tensor& out, int64_t rows, int n) {
  const int blocks = int((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  launch_dependent(rms_norm_kernel<T, V>, dim3(blocks), dim3(kWarpsPerBlock * 32), 0, x.data<T>(),
                   weight ? weight->data<float>() : nullptr, out.data<T>(), rows, n, eps);
  FALCON_CUDA_CHECK_LAUNCH("rms_norm_kernel");
}

}  // namespace

void rms_norm(const Tensor& x, const Tensor* weight, float eps, Tensor& out) {
  const int64_t n = x.dim(-1);
  const int64_t rows = n ? x.numel() / n : 0;
  if (rows == 0) return;
  dispatch_float(x.dtype(), "rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool vec = n % 4 == 0 && aligned_to(x.raw(), 4 * sizeof(T)) && aligned_to(out.raw(), 4 * sizeof(T));
    if (vec) {
      launch<T, 4>(x, weight, eps, out, rows, int(n));
    } else {
      launch<T, 1>(x, weight, eps, out, rows, int(n));
    }
  });
}

}  // namespace falcon::ops::cuda
