#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/bilinear_resize.h"

namespace falcon::ops::cpu {
namespace {

// One output coordinate's two source indices and weights (torch's
// area_pixel_compute_source_index with align_corners=False, in float).
struct Tap {
  int64_t i0, i1;
  float l0, l1;
};

std::vector<Tap> taps(int64_t in, int64_t out) {
  std::vector<Tap> t(static_cast<size_t>(out));
  const float scale = float(in) / float(out);
  for (int64_t i = 0; i < out; ++i) {
    // Fused multiply-add, as the CUDA reference computes it (nvcc contracts this line).
    float src = std::fma(scale, float(i) + 0.5f, -0.5f);
    if (src < 0.f) src = 0.f;
    const int64_t i0 = int64_t(src);
    const float l1 = src - float(i0);
    t[size_t(i)] = {i0, i0 < in - 1 ? i0 + 1 : i0, 1.f - l1, l1};
  }
  return t;
}

}  // namespace

void bilinear_resize(const Tensor& x, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  const int64_t oh = out.dim(1), ow = out.dim(2);
  const std::vector<Tap> ty = taps(h, oh), tx = taps(w, ow);
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  parallel_for(c * oh, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / oh;
      const Tap& y = ty[size_t(t % oh)];
      const float* r0 = xp + (ch * h + y.i0) * w;
      const float* r1 = xp + (ch * h + y.i1) * w;
      float* dst = op + t * ow;
      for (int64_t j = 0; j < ow; ++j) {
        const Tap& xx = tx[size_t(j)];
        dst[j] = y.l0 * (xx.l0 * r0[xx.i0] + xx.l1 * r0[xx.i1]) +
                 y.l1 * (xx.l0 * r1[xx.i0] + xx.l1 * r1[xx.i1]);
      }
    }
  });
}

}  // namespace falcon::ops::cpu
