#include "core/error.h"
#include "core/parallel.h"
#include "ops/activation.h"

namespace falcon::ops::cpu {

void squared_relu_gate(const Tensor& a, Tensor& out) {
  if (a.dtype() != DType::F32) throw Unsupported("squared_relu_gate (cpu): only F32 activations");
  const int64_t F = out.dim(1);
  const float* in = a.data<float>();
  float* o = out.data<float>();
  parallel_for(out.numel(), 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t idx = b; idx < e; ++idx) {
      const int64_t m = idx / F, j = idx % F;
      const float gate = in[m * 2 * F + 2 * j];
      const float r = gate > 0.f ? gate : 0.f;
      o[idx] = r * r * in[m * 2 * F + 2 * j + 1];
    }
  });
}

void squared_relu(const Tensor& x, Tensor& out) {
  if (x.dtype() != DType::F32) throw Unsupported("squared_relu (cpu): only F32 activations");
  const float* in = x.data<float>();
  float* o = out.data<float>();
  parallel_for(x.numel(), 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float r = in[i] > 0.f ? in[i] : 0.f;
      o[i] = r * r;
    }
  });
}

}  // namespace falcon::ops::cpu
