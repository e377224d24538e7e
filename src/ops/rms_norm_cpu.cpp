#include <cmath>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/rms_norm.h"

namespace falcon::ops::cpu {

void rms_norm(const Tensor& x, const Tensor* weight, float eps, Tensor& out) {
  if (x.dtype() != DType::F32) throw Unsupported("rms_norm (cpu): only F32 activations");
  const int64_t n = x.dim(-1);
  const int64_t rows = n ? x.numel() / n : 0;
  const float* in = x.data<float>();
  float* o = out.data<float>();
  const float* w = weight ? weight->data<float>() : nullptr;
  parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = in + r * n;
      float* orow = o + r * n;
      // Accumulate in double: the engine must match the reference to 1e-4 over many
      // layers, and the cost is nothing next to the GEMMs.
      double ss = 0;
      for (int64_t j = 0; j < n; ++j) ss += double(xr[j]) * xr[j];
      const float inv = float(1.0 / std::sqrt(ss / double(n) + double(eps)));
      if (w) {
        for (int64_t j = 0; j < n; ++j) orow[j] = xr[j] * inv * w[j];
      } else {
        for (int64_t j = 0; j < n; ++j) orow[j] = xr[j] * inv;
      }
    }
  });
}

}  // namespace falcon::ops::cpu
