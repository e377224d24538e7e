// Elementwise math for CPU kernels, written so that the compiler vectorises the loops that
// call it (the libm functions do not vectorise without -ffast-math, and the image path
// evaluates exp on ~10^9 elements).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace falcon::ops::cpu {

// exp(x) within 2 ulp of expf over the float range (Cephes' range reduction and
// polynomial); saturates to 0 / FLT_MAX-scale instead of producing denormals or inf.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (no rounding-mode calls, so it vectorises).
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

inline float sigmoid_approx(float x) {
  return 1.f / (1.f + exp_approx(-x));
}

inline float silu_approx(float x) {
  return x / (1.f + exp_approx(-x));
}

}  // namespace falcon::ops::cpu
