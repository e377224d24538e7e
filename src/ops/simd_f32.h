// A minimal f32 vector type for the CPU linear kernels, chosen at compile time from -march:
// AVX-512 (16 lanes), AVX2+FMA (8 lanes) or plain scalar (1 lane). The kernels are written once
// against this and so the same tests cover whichever path the build compiled.
#pragma once

#if defined(__AVX512F__) || defined(__AVX2__)
// GCC 12's AVX-512 intrinsics trip -Wmaybe-uninitialized on their own "undefined" pass-through
// operand (GCC PR 105593, fixed in 13); the warning is located in the header, so silence it there.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace falcon::ops::cpu::simd {

#if defined(__AVX512F__)

inline constexpr int kLanes = 16;
struct VF {
  __m512 v;
};
inline VF load(const float* p) { return {_mm512_loadu_ps(p)}; }
inline void store(float* p, VF a) { _mm512_storeu_ps(p, a.v); }
inline VF set1(float x) { return {_mm512_set1_ps(x)}; }
inline VF zero() { return {_mm512_setzero_ps()}; }
inline VF add(VF a, VF b) { return {_mm512_add_ps(a.v, b.v)}; }
inline VF mul(VF a, VF b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline VF fmadd(VF a, VF b, VF c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }

#elif defined(__AVX2__)

inline constexpr int kLanes = 8;
struct VF {
  __m256 v;
};
inline VF load(const float* p) { return {_mm256_loadu_ps(p)}; }
inline void store(float* p, VF a) { _mm256_storeu_ps(p, a.v); }
inline VF set1(float x) { return {_mm256_set1_ps(x)}; }
inline VF zero() { return {_mm256_setzero_ps()}; }
inline VF add(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VF mul(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
#if defined(__FMA__)
inline VF fmadd(VF a, VF b, VF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
#else
inline VF fmadd(VF a, VF b, VF c) { return {_mm256_add_ps(_mm256_mul_ps(a.v, b.v), c.v)}; }
#endif

#else

inline constexpr int kLanes = 1;
struct VF {
  float v;
};
inline VF load(const float* p) { return {*p}; }
inline void store(float* p, VF a) { *p = a.v; }
inline VF set1(float x) { return {x}; }
inline VF zero() { return {0.f}; }
inline VF add(VF a, VF b) { return {a.v + b.v}; }
inline VF mul(VF a, VF b) { return {a.v * b.v}; }
inline VF fmadd(VF a, VF b, VF c) { return {a.v * b.v + c.v}; }

#endif

}  // namespace falcon::ops::cpu::simd
