// The register-blocked inner kernel of the CPU linear op: MR rows of activations times one
// 32-wide weight panel, accumulated in MR x kVecs vector registers. Used by both the GEMV
// (decode, weight decoded in registers) and the GEMM (prefill, f32 panel in L1).
#pragma once

#include <cstdint>
#include <utility>

#include "ops/panel_rows.h"

namespace falcon::ops::cpu {

// Register budget (32 zmm / 16 ymm): MR * kVecs accumulators + kVecs weights + 1 broadcast.
#if defined(__AVX512F__)
inline constexpr int kGemmRows = 14;  // 28 accumulators: 2 FMAs per cycle need >= 8 in flight
inline constexpr int kGemvRows = 8;   // leaves registers for the decode constants (scales)
#elif defined(__AVX2__)
inline constexpr int kGemmRows = 3;
inline constexpr int kGemvRows = 2;
#else
inline constexpr int kGemmRows = 2;
inline constexpr int kGemvRows = 2;
#endif

template <int MR>
using Acc = VF[MR][kVecs];

template <int MR>
inline void zero(Acc<MR>& acc) {
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) acc[m][v] = simd::zero();
}

// acc[m] += a[m] * w for one k; a holds the MR activations of that k side by side.
template <int MR>
inline void fma_row(const float* a, const PanelRow& w, Acc<MR>& acc) {
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    const VF x = simd::set1(a[m]);
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) acc[m][v] = simd::fmadd(x, w[v], acc[m][v]);
  }
}

// acc += a[k0..k1) x panel rows [k0..k1). `a` is packed k-major, a[(k - k0) * MR + m]. Blocked
// readers need k0, k1 on block boundaries.
template <int MR, class Rows>
inline void dot_panel(const float* a, Rows& rows, int64_t k0, int64_t k1, Acc<MR>& acc) {
  PanelRow w;
  if constexpr (Rows::kBlocked) {
    for (int64_t b = k0 / kQuantBlock; b < k1 / kQuantBlock; ++b) {
      rows.block(b);
      const float* ab = a + (b * kQuantBlock - k0) * MR;
#pragma GCC unroll 4
      for (int k = 0; k < kQuantBlock; ++k) {
        rows.row(k, w);
        fma_row<MR>(ab + k * MR, w, acc);
      }
    }
  } else {
#pragma GCC unroll 4
    for (int64_t k = k0; k < k1; ++k) {
      rows.row(k, w);
      fma_row<MR>(a + (k - k0) * MR, w, acc);
    }
  }
}

// Writes the MR x width tile at c (row stride ldc): c = acc (+ bias) (+ c when add_c).
template <int MR>
inline void store_tile(const Acc<MR>& acc, float* c, int64_t ldc, int width, const float* bias, bool add_c) {
  if (width == kPanel) {
    PanelRow b;
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) b[v] = bias ? simd::load(bias + v * simd::kLanes) : simd::zero();
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) {
        float* cp = c + m * ldc + v * simd::kLanes;
        VF r = simd::add(acc[m][v], b[v]);
        if (add_c) r = simd::add(r, simd::load(cp));
        simd::store(cp, r);
      }
    }
    return;
  }
  alignas(64) float t[kPanel];
  for (int m = 0; m < MR; ++m) {
    for (int v = 0; v < kVecs; ++v) simd::store(t + v * simd::kLanes, acc[m][v]);
    for (int j = 0; j < width; ++j) {
      float r = t[j] + (bias ? bias[j] : 0.f);
      if (add_c) r += c[m * ldc + j];
      c[m * ldc + j] = r;
    }
  }
}

// Calls f(std::integral_constant<int, mr>) for a runtime mr in [1, Max]: the kernels need the
// row count at compile time to keep the accumulators in registers.
template <int Max, class F>
inline void with_rows(int mr, F&& f) {
  if constexpr (Max >= 1) {
    if (mr == Max) {
      f(std::integral_constant<int, Max>{});
    } else {
      with_rows<Max - 1>(mr, std::forward<F>(f));
    }
  }
}

}  // namespace falcon::ops::cpu
