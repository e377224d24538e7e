// Block quantisation of linear weights (DType::Q8, DType::Q4): the values, independent of any
// device's memory layout. Every backend must produce and read exactly these numbers, so a test
// can build its reference from these functions alone.
//
// A weight row [K] (K a multiple of 32) is cut into blocks of 32 consecutive k. Each block has
// one f32 scale s and 32 integers q; the value it stands for is float(q) * s, rounded once to f32.
//   Q8: s = max|w| / 127, q = round_half_even(w / s) in [-127, 127]   |w - q s| <= s / 2
//   Q4: s = max|w| / 7,   q = round_half_even(w / s) in [-7, 7]       |w - q s| <= s / 2
// Symmetric (no zero point, -128 / -8 unused) so that 0 stays exact and no offset term is needed.
// A block of zeros has s = 0 and q = 0. On the CPU, Q4 stores u = q + 8 in a nibble (1..15).
//
// The CPU's packed arrangement of these blocks is in packed_weight.h.
#pragma once

#include <cstdint>

namespace falcon::ops {

inline constexpr int kQuantBlock = 32;

// Quantises 32 floats: writes 32 values q and returns the scale.
float quantize_block_q8(const float* w, int8_t* q);
float quantize_block_q4(const float* w, int8_t* q);  // q in [-7, 7], one per int8

// The value a quantised element stands for (what every kernel must multiply by).
inline float dequantize(int q, float scale) { return float(q) * scale; }

}  // namespace falcon::ops
