#include <vector>

#include "core/parallel.h"
#include "ops/adaptive_avg_pool2d.h"

namespace falcon::ops::cpu {

void adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const int64_t c = x.dim(0), h = x.dim(1), w = x.dim(2);
  const int64_t oh = out.dim(1), ow = out.dim(2);
  const float* xp = x.data<float>();
  float* op = out.data<float>();
  parallel_for(c * oh, 1, [&](int64_t t0, int64_t t1) {
    std::vector<float> rows(static_cast<size_t>(w));  // (W) column sums of the window's rows
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ch = t / oh, i = t % oh;
      const int64_t y0 = i * h / oh, y1 = ((i + 1) * h + oh - 1) / oh;
      std::fill(rows.begin(), rows.end(), 0.f);
      for (int64_t y = y0; y < y1; ++y) {
        const float* src = xp + (ch * h + y) * w;
        for (int64_t xx = 0; xx < w; ++xx) rows[size_t(xx)] += src[xx];
      }
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t x0 = j * w / ow, x1 = ((j + 1) * w + ow - 1) / ow;
        float s = 0.f;
        for (int64_t xx = x0; xx < x1; ++xx) s += rows[size_t(xx)];
        op[(ch * oh + i) * ow + j] = s / float((y1 - y0) * (x1 - x0));
      }
    }
  });
}

}  // namespace falcon::ops::cpu
