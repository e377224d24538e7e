#include <algorithm>

#include "core/parallel.h"
#include "ops/chw_layout.h"

namespace falcon::ops::cpu {

void hwc_to_chw(const Tensor& x, Tensor& out) {
  const int64_t h = x.dim(0), w = x.dim(1), c = x.dim(2);
  const int64_t oh = out.dim(1), ow = out.dim(2);
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  parallel_for(c * oh, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / oh, y = t % oh;
      float* dst = op + t * ow;
      if (y >= h) {
        std::fill(dst, dst + ow, 0.f);
        continue;
      }
      const float* src = xp + y * w * c + ch;
      for (int64_t xx = 0; xx < w; ++xx) dst[xx] = src[xx * c];
      std::fill(dst + w, dst + ow, 0.f);
    }
  });
}

void crop_chw(const Tensor& x, Tensor& out) {
  const int64_t h = x.dim(1), w = x.dim(2);
  const int64_t oh = out.dim(1), ow = out.dim(2);
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  parallel_for(out.dim(0) * oh, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / oh, y = t % oh;
      const float* src = xp + (ch * h + y) * w;
      std::copy(src, src + ow, op + t * ow);
    }
  });
}

}  // namespace falcon::ops::cpu
