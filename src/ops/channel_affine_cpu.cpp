#include "core/parallel.h"
#include "ops/channel_affine.h"

namespace falcon::ops::cpu {

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out) {
  const int64_t c = x.dim(0), n = c ? x.numel() / c : 0;
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  parallel_for(c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float a = scale.data<float>()[ch], b = shift.data<float>()[ch];
      for (int64_t i = ch * n; i < (ch + 1) * n; ++i) op[i] = xp[i] * a + b;
    }
  });
}

}  // namespace falcon::ops::cpu
