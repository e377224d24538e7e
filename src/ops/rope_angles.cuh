// The angles of the 3-D RoPE on CUDA (qk_norm_rope.h states the rotation), shared by the
// attention input stage and the decode attention that folds that stage in, so both rotate
// with the same f32 values the CPU computes.
#pragma once

#include <type_traits>

#include "ops/qk_norm_rope.h"

namespace falcon::ops::cuda {

constexpr int kRopeMaxQuarter = 64;  // head_dim up to 256

// The 1-D inverse frequencies of a head (hd / 4 of them), passed by value so a captured graph
// holds them, not a pointer to host memory.
struct RopeInvFreq {
  float f[kRopeMaxQuarter];
};

inline RopeInvFreq rope_inv_freqs(float theta, int hd) {
  RopeInvFreq r{};
  for (int i = 0; i < hd / 4 && i < kRopeMaxQuarter; ++i) r.f[i] = rope_inv_freq(theta, hd / 2, i);
  return r;
}

// Angles rounded to f32 as torch computes them (no fused multiply-add).
__device__ __forceinline__ float rope_temporal_angle(float pos_t, float inv_freq) { return __fmul_rn(pos_t, inv_freq); }
__device__ __forceinline__ float rope_spatial_angle(float pos_h, float pos_w, const float* golden_pair) {
  return __fadd_rn(__fmul_rn(pos_h, golden_pair[0]), __fmul_rn(pos_w, golden_pair[1]));
}

// F32 (the parity mode) takes cos/sin in double as the CPU reference does; 16-bit activations
// cannot see the last ulp of sincosf.
template <typename T>
__device__ __forceinline__ void rope_cos_sin(float angle, float* c, float* s) {
  if constexpr (std::is_same_v<T, float>) {
    double ds, dc;
    sincos(double(angle), &ds, &dc);
    *c = float(dc);
    *s = float(ds);
  } else {
    sincosf(angle, s, c);
  }
}

}  // namespace falcon::ops::cuda
