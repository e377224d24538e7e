#include "ops/quantize.h"

#include <algorithm>
#include <cmath>

namespace falcon::ops {

namespace {

float quantize_block(const float* w, int8_t* q, int qmax) {
  float amax = 0;
  for (int i = 0; i < kQuantBlock; ++i) amax = std::max(amax, std::fabs(w[i]));
  const float s = amax / float(qmax);
  for (int i = 0; i < kQuantBlock; ++i) {
    // Divide (not multiply by 1/s) so that |w - q s| <= s/2 holds up to one rounding of w / s.
    const float r = s > 0 ? std::nearbyint(w[i] / s) : 0.f;
    q[i] = int8_t(std::clamp(r, -float(qmax), float(qmax)));
  }
  return s;
}

}  // namespace

float quantize_block_q8(const float* w, int8_t* q) { return quantize_block(w, q, 127); }
float quantize_block_q4(const float* w, int8_t* q) { return quantize_block(w, q, 7); }

}  // namespace falcon::ops
