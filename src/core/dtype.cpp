#include "core/dtype.h"

#include <cmath>

#include "core/error.h"

namespace falcon {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    case DType::Q8: return "Q8";
    case DType::Q4: return "Q4";
  }
  return "?";
}

DType dtype_from_name(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (n == "F32" || n == "FP32" || n == "FLOAT32") return DType::F32;
  if (n == "BF16" || n == "BFLOAT16") return DType::BF16;
  if (n == "F16" || n == "FP16" || n == "FLOAT16") return DType::F16;
  if (n == "I64") return DType::I64;
  if (n == "I32") return DType::I32;
  if (n == "U8") return DType::U8;
  if (n == "Q8" || n == "INT8") return DType::Q8;
  if (n == "Q4" || n == "INT4") return DType::Q4;
  throw InvalidArgument("unknown dtype '" + std::string(name) + "'");
}

int64_t block_elems(DType t) { return (t == DType::Q8 || t == DType::Q4) ? 32 : 1; }

bool is_float(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }

size_t row_bytes(DType t, int64_t n) {
  switch (t) {
    case DType::F32: case DType::I32: return size_t(n) * 4;
    case DType::BF16: case DType::F16: return size_t(n) * 2;
    case DType::I64: return size_t(n) * 8;
    case DType::U8: return size_t(n);
    case DType::Q8: return size_t(n / 32) * (32 + 4);
    case DType::Q4: return size_t(n / 32) * (16 + 4);
  }
  return 0;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  float out;
  if (exp == 0) {
    out = std::ldexp(float(mant), -24);  // subnormal or zero
    return sign ? -out : out;
  }
  uint32_t bits;
  if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  std::memcpy(&out, &bits, 4);
  return out;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflows to inf
  if (absx < 0x38800000u) {                                   // subnormal in f16
    float a;
    std::memcpy(&a, &absx, 4);
    return uint16_t(sign | uint16_t(std::nearbyint(a * 16777216.0f)));
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 112;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

}  // namespace falcon
