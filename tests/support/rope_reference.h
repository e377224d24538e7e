// The attention input stage of one head in double, written from MODEL.md for the op tests:
// RMS-normalised (no weight), then the 3-D RoPE with head h's golden frequencies. The angles are
// rounded to f32 as the reference model computes them (positions in the thousands make that
// rounding visible). Header-only: it needs the ops library's rope_inv_freq.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/qk_norm_rope.h"

namespace falcon::test {

template <typename T>
void reference_norm_rope(const T* x, int64_t hd, float pos_t, float ph, float pw,
                         const float* golden_h, float theta, double eps, double* out) {
  double ss = 0;
  for (int64_t c = 0; c < hd; ++c) ss += double(x[c]) * double(x[c]);
  const double inv = 1 / std::sqrt(ss / double(hd) + eps);
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < hd / 4; ++i) {
    const volatile float a_f32 = pos_t * ops::rope_inv_freq(theta, int(half), int(i));
    const volatile float hp = ph * golden_h[2 * i], wp = pw * golden_h[2 * i + 1];
    const volatile float b_f32 = hp + wp;
    const double a = a_f32, b = b_f32;
    const double x0 = double(x[2 * i]) * inv, x1 = double(x[2 * i + 1]) * inv;
    const double y0 = double(x[half + 2 * i]) * inv, y1 = double(x[half + 2 * i + 1]) * inv;
    out[2 * i] = x0 * std::cos(a) - x1 * std::sin(a);
    out[2 * i + 1] = x0 * std::sin(a) + x1 * std::cos(a);
    out[half + 2 * i] = y0 * std::cos(b) - y1 * std::sin(b);
    out[half + 2 * i + 1] = y0 * std::sin(b) + y1 * std::cos(b);
  }
}

}  // namespace falcon::test
