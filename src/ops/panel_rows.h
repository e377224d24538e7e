// Readers that turn one k-row of a full packed panel (packed_weight.h) into 32 f32 weights held
// in kVecs vectors, decoding BF16/F16/Q8/Q4 in registers. The GEMV streams the weight through
// these directly (the weight is read once, so decoding where it lands costs no extra traffic);
// the GEMM uses them to fill its f32 panel buffer. row() must yield exactly decode_panel's floats.
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
// q as float: sign-extend 32 int8, convert.
inline void values_q8(const int8_t* r, PanelRow& w) {
  for (int v = 0; v < 2; ++v) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + 16 * v));
    w[v].v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
  }
}
// q as float: widen the 16 bytes to dwords once; vpermps reads only the low 4 bits of each index,
// so the low nibble indexes directly and the high one after a shift, into a table of u - 8.
// 4 uops for 32 weights (vs 7 masking, widening and converting each half).
inline void values_q4(const uint8_t* r, PanelRow& w) {
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r)));
  const __m512 table = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  w[0].v = _mm512_permutexvar_ps(b, table);
  w[1].v = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table);
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
inline void values_q8(const int8_t* r, PanelRow& w) {
  for (int v = 0; v < 4; ++v) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r + 8 * v));
    w[v].v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
  }
}
inline void values_q4(const uint8_t* r, PanelRow& w) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(b, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
  const __m128i parts[4] = {lo, _mm_unpackhi_epi64(lo, lo), hi, _mm_unpackhi_epi64(hi, hi)};
  const __m256 eight = _mm256_set1_ps(8.f);
  for (int v = 0; v < 4; ++v) w[v].v = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[v])), eight);
}

#else

inline void decode_bf16(const uint16_t* r, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = bf16_to_f32(r[j < 16 ? 2 * j : 2 * (j - 16) + 1]);
}
inline void decode_f16(const uint16_t* r, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = f16_to_f32(r[j]);
}
inline void values_q8(const int8_t* r, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = float(r[j]);
}
inline void values_q4(const uint8_t* r, PanelRow& w) {
  for (int j = 0; j < kPanel; ++j) w[j].v = float(((r[j % 16] >> (j < 16 ? 0 : 4)) & 15) - 8);
}

#endif

}  // namespace detail

// Every reader: kBlocked (rows come in blocks of 32 with per-block state), block(b) to enter
// block b (blocked readers only), row(k, w) with k absolute (unblocked) or within the block.

// at(panel) makes a reader of a full panel of the packed weight. prefetch(i) asks for row i
// (unblocked) or block i (blocked) ahead of use; kStep is the bytes of one of them.

inline void prefetch_bytes(const void* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(static_cast<const char*>(p) + o, 0, 3);
}

struct F32Rows {
  static constexpr bool kBlocked = false;
  const float* p;  // row stride kPanel floats
  static F32Rows at(const uint8_t* panel) { return {reinterpret_cast<const float*>(panel)}; }
  static constexpr size_t kStep = kPanel * 4;
  void prefetch(int64_t k) const { prefetch_bytes(p + k * kPanel, kStep); }
  void row(int64_t k, PanelRow& w) const {
    for (int v = 0; v < kVecs; ++v) w[v] = simd::load(p + k * kPanel + v * simd::kLanes);
  }
};

struct Bf16Rows {
  static constexpr bool kBlocked = false;
  const uint16_t* p;
  static Bf16Rows at(const uint8_t* panel) { return {reinterpret_cast<const uint16_t*>(panel)}; }
  static constexpr size_t kStep = kPanel * 2;
  void prefetch(int64_t k) const { prefetch_bytes(p + k * kPanel, kStep); }
  void row(int64_t k, PanelRow& w) const { detail::decode_bf16(p + k * kPanel, w); }
};

struct F16Rows {
  static constexpr bool kBlocked = false;
  const uint16_t* p;
  static F16Rows at(const uint8_t* panel) { return {reinterpret_cast<const uint16_t*>(panel)}; }
  static constexpr size_t kStep = kPanel * 2;
  void prefetch(int64_t k) const { prefetch_bytes(p + k * kPanel, kStep); }
  void row(int64_t k, PanelRow& w) const { detail::decode_f16(p + k * kPanel, w); }
};

// Q8/Q4: values(k, w) gives the integers q of row k of the current block as floats, scales the
// block's 32 scales; row(k, w) the dequantised weights, float(q) * s exactly as quantize.h.
struct Q8Rows {
  static constexpr bool kBlocked = true;
  static constexpr size_t kChunk = size_t(kPanel) * 36;
  const uint8_t* p;
  const int8_t* q = nullptr;
  PanelRow scales{};
  static Q8Rows at(const uint8_t* panel) { return {panel}; }
  static constexpr size_t kStep = kChunk;
  void prefetch(int64_t b) const { prefetch_bytes(p + size_t(b) * kChunk, kChunk); }
  void block(int64_t b) {
    const uint8_t* c = p + size_t(b) * kChunk;
    for (int v = 0; v < kVecs; ++v) scales[v] = simd::load(reinterpret_cast<const float*>(c) + v * simd::kLanes);
    q = reinterpret_cast<const int8_t*>(c + kPanel * 4);
  }
  void values(int k, PanelRow& w) const { detail::values_q8(q + k * kPanel, w); }
  void row(int k, PanelRow& w) const {
    values(k, w);
    for (int v = 0; v < kVecs; ++v) w[v] = simd::mul(w[v], scales[v]);
  }
};

struct Q4Rows {
  static constexpr bool kBlocked = true;
  static constexpr size_t kChunk = size_t(kPanel) * 20;
  const uint8_t* p;
  const uint8_t* q = nullptr;
  PanelRow scales{};
  static Q4Rows at(const uint8_t* panel) { return {panel}; }
  static constexpr size_t kStep = kChunk;
  void prefetch(int64_t b) const { prefetch_bytes(p + size_t(b) * kChunk, kChunk); }
  void block(int64_t b) {
    const uint8_t* c = p + size_t(b) * kChunk;
    for (int v = 0; v < kVecs; ++v) scales[v] = simd::load(reinterpret_cast<const float*>(c) + v * simd::kLanes);
    q = c + kPanel * 4;
  }
  void values(int k, PanelRow& w) const { detail::values_q4(q + k * (kPanel / 2), w); }
  void row(int k, PanelRow& w) const {
    values(k, w);
    for (int v = 0; v < kVecs; ++v) w[v] = simd::mul(w[v], scales[v]);
  }
};

}  // namespace falcon::ops::cpu
