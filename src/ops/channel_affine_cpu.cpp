#include <algorithm>

#include "core/parallel.h"
#include "ops/channel_affine.h"
#include "ops/cpu_math.h"

namespace falcon::ops::cpu {

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out,
                    bool silu) {
  const int64_t c = x.dim(0), n = c ? x.numel() / c : 0;
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  // Chunks of a channel, so that few large channels still spread over the threads.
  const int64_t chunk = 1 << 14, per_channel = (n + chunk - 1) / chunk;
  parallel_for(c * per_channel, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / per_channel, i0 = ch * n + (t % per_channel) * chunk;
      const int64_t i1 = std::min(i0 + chunk, (ch + 1) * n);
      const float a = scale.data<float>()[ch], b = shift.data<float>()[ch];
      if (silu) {
        for (int64_t i = i0; i < i1; ++i) op[i] = silu_approx(xp[i] * a + b);
      } else {
        for (int64_t i = i0; i < i1; ++i) op[i] = xp[i] * a + b;
      }
    }
  });
}

}  // namespace falcon::ops::cpu
