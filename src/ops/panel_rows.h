// Readers that turn one k-row of a full packed panel (packed_weight.h) into 32 f32 weights held
// in kVecs vectors, decoding BF16/F16/Q8/Q4 in registers. The GEMV streams the weight through
// these directly (the weight is read once, so decoding where it lands costs no extra traffic);
// the GEMM uses them to fill its f32 panel buffer. Each must yield exactly decode_panel's floats.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "ops/packed_weight.h"
#include "ops/quantize.h"
#include "ops/simd_f32.h"

namespace falcon::ops::cpu {

using simd::VF;
inline constexpr int kVecs = kPanel / simd::kLanes;  // vectors per panel row
using PanelRow = VF[kVecs];

namespace detail {

#if defined(__AVX512F__)

inline void decode_bf16(const uint16_t* r, PanelRow& w) {
  const __m512i v = _mm512_loadu_si512(r);
  w[0].v = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  w[1].v = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
}
inline void decode_f16(const uint16_t* r, PanelRow& w) {
  w[0].v = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r)));
  w[1].v = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 16)));
}
inline void decode_q8(const int8_t* r, const PanelRow& s, PanelRow& w) {
  for (int v = 0; v < 2; ++v) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 16 * v));
    w[v].v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), s[v].v);
  }
}
// u * s + (-8 s) with one rounding is exactly float(u - 8) * s (8 s is exact).
inline void decode_q4(const uint8_t* r, const PanelRow& s, const PanelRow& neg8s, PanelRow& w) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(b, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  w[0].v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), s[0].v, neg8s[0].v);
  w[1].v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), s[1].v, neg8s[1].v);
}

#elif defined(__AVX2__)

inline void decode_bf16(const uint16_t* r, PanelRow& w) {
  const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r));
  const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 16));
  const __m256i hi = _mm256_set1_epi32(int(0xffff0000u));
  w[0].v = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));  // lanes 0..7
  w[1].v = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));  // lanes 8..15
  w[2].v = _mm256_castsi256_ps(_mm256_and_si256(v0, hi));   // lanes 16..23
  w[3].v = _mm256_castsi256_ps(_mm256_and_si256(v1, hi));   // lanes 24..31
}
inline void decode_f16(const uint16_t* r, PanelRow& w) {
  for (int v = 0; v < 4; ++v) {
#if defined(__F16C__)
    w[v].v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 8 * v)));
#else
    alignas(32) float t[8];
    for (int i = 0; i < 8; ++i) t[i] = f16_to_f32(r[8 * v + i]);
    w[v].v = _mm256_load_ps(t);
#endif
  }
}
inline void decode_q8(const int8_t* r, const PanelRow& s, PanelRow& w) {
  for (int v = 0; v < 4; ++v) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + 8 * v));
    w[v].v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), s[v].v);
  }
}
inline void decode_q4(const uint8_t* r, const PanelRow& s, const PanelRow& neg8s, PanelRow& w) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(b, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  const __m128i parts[4] = {lo, _mm_unpackhi_epi64(lo, lo), hi, _mm_unpackhi_epi64(hi, hi)};
  for (int v = 0; v < 4; ++v) {
    const __m256 u = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[v]));
    w[v] = simd::fmadd({u}, s[v], neg8s[v]);
  }
}

#else

inline void decode_bf16(const uint16_t* r, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = bf16_to_f32(r[j < 16 ? 2 * j : 2 * (j - 16) + 1]);
}
inline void decode_f16(const uint16_t* r, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = f16_to_f32(r[j]);
}
inline void decode_q8(const int8_t* r, const PanelRow& s, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = dequantize(r[j], s[j].v);
}
inline void decode_q4(const uint8_t* r, const PanelRow& s, const PanelRow& /*neg8s*/, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = dequantize(((r[j % 16] >> (j < 16 ? 0 : 4)) & 15) - 8, s[j].v);
}

#endif

}  // namespace detail

// Every reader: kBlocked (rows come in blocks of 32 with per-block state), block(b) to enter
// block b (blocked readers only), row(k, w) with k absolute (unblocked) or within the block.

struct F32Rows {
  static constexpr bool kBlocked = false;
  const float* p;  // row stride kPanel floats
  void row(int64_t k, PanelRow& w) const {
    for (int v = 0; v < kVecs; ++v) w[v] = simd::load(p + k * kPanel + v * simd::kLanes);
  }
};

struct Bf16Rows {
  static constexpr bool kBlocked = false;
  const uint16_t* p;
  void row(int64_t k, PanelRow& w) const { detail::decode_bf16(p + k * kPanel, w); }
};

struct F16Rows {
  static constexpr bool kBlocked = false;
  const uint16_t* p;
  void row(int64_t k, PanelRow& w) const { detail::decode_f16(p + k * kPanel, w); }
};

struct Q8Rows {
  static constexpr bool kBlocked = true;
  static constexpr size_t kChunk = size_t(kPanel) * 36;
  const uint8_t* p;
  const int8_t* q = nullptr;
  PanelRow s{};
  void block(int64_t b) {
    const uint8_t* c = p + size_t(b) * kChunk;
    for (int v = 0; v < kVecs; ++v) s[v] = simd::load(reinterpret_cast<const float*>(c) + v * simd::kLanes);
    q = reinterpret_cast<const int8_t*>(c + kPanel * 4);
  }
  void row(int k, PanelRow& w) const { detail::decode_q8(q + k * kPanel, s, w); }
};

struct Q4Rows {
  static constexpr bool kBlocked = true;
  static constexpr size_t kChunk = size_t(kPanel) * 20;
  const uint8_t* p;
  const uint8_t* q = nullptr;
  PanelRow s{}, neg8s{};
  void block(int64_t b) {
    const uint8_t* c = p + size_t(b) * kChunk;
    for (int v = 0; v < kVecs; ++v) {
      s[v] = simd::load(reinterpret_cast<const float*>(c) + v * simd::kLanes);
      neg8s[v] = simd::mul(s[v], simd::set1(-8.f));
    }
    q = c + kPanel * 4;
  }
  void row(int k, PanelRow& w) const { detail::decode_q4(q + k * (kPanel / 2), s, neg8s, w); }
};

}  // namespace falcon::ops::cpu
