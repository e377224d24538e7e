// Element types and their conversions.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace falcon {

enum class DType : uint8_t {
  F32,
  BF16,
  F16,
  I64,
  I32,
  U8,
  Q8,  // blocks of 32 int8 values with one f32 scale (see ops/quantize.h)
  Q4,  // blocks of 32 int4 values with one f32 scale
};

const char* dtype_name(DType t);
// Parses the names used in safetensors headers ("F32", "BF16", ...) and on the command
// line ("f32", "bf16", "q8", ...). Throws InvalidArgument on anything else.
DType dtype_from_name(std::string_view name);

// Bytes of a row of n elements (n must be a multiple of the block size for Q8/Q4).
size_t row_bytes(DType t, int64_t n);
// Elements per block: 1 for plain types, 32 for Q8/Q4.
int64_t block_elems(DType t);
bool is_float(DType t);

inline float bf16_to_f32(uint16_t v) {
  uint32_t bits = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace falcon
