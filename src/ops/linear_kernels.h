// The register-blocked inner kernel of the CPU linear op: MR rows of activations times one
// 32-wide weight panel, accumulated in MR x kVecs vector registers. Used by both the GEMV
// (decode, weight decoded in registers) and the GEMM (prefill, f32 panel in L1).
#pragma once

#include <cstdint>
#include <utility>

#include "ops/panel_rows.h"

namespace falcon::ops::cpu {

// Register budget (32 zmm / 16 ymm): MR * kVecs accumulators + kVecs weights + 1 broadcast.
// kGemvQuantRows: rows per GEMV pass over a Q8/Q4 panel, which keeps a second set of
// accumulators per block (see dot_panel).
#if defined(__AVX512F__)
inline constexpr int kGemmRows = 14;  // 28 accumulators: 2 FMAs per cycle need >= 8 in flight
inline constexpr int kGemvRows = 8;
inline constexpr int kGemvQuantRows = 4;
#elif defined(__AVX2__)
inline constexpr int kGemmRows = 3;
inline constexpr int kGemvRows = 2;
inline constexpr int kGemvQuantRows = 1;
#else
inline constexpr int kGemmRows = 2;
inline constexpr int kGemvRows = 2;
inline constexpr int kGemvQuantRows = 1;
#endif

template <int MR>
using Acc = VF[MR][kVecs];

// How far ahead of use the GEMV asks for each panel's weight stream (dot_panels_impl). 1 to 32
// KiB, into L1 or L2, measured within 5% of each other.
inline constexpr int64_t kPrefetchBytes = 2048;

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

// acc[p] += a[k0..k1) x rows of panel p over [k0..k1), for P panels side by side. `a` is packed
// k-major, a[(k - k0) * MR + m]. Blocked readers need k0, k1 on block boundaries.
//
// P > 1 is for few rows: one row has only kVecs accumulators, fewer than the FMA latency needs
// in flight, so more panels run at once. Each panel's sums keep their order, so a result does
// not depend on P.
//
// Q8/Q4 with few rows (the memory-bound GEMV) sum x * q over a block first and scale once per
// block, acc += s * sum(x q): this takes the two multiplies by the scale out of every row of
// weights, which is what keeps the Q4 GEMV at memory speed. More rows would need more registers
// than there are, and there the FMAs dominate anyway, so they multiply by the scale in the row.
template <int MR, int P, bool kPrefetch, class Rows>
inline void dot_panels_impl(const float* a, Rows (&rows)[P], int64_t k0, int64_t k1, Acc<MR> (&acc)[P]) {
  // Streaming from memory, each panel is its own stream; the hardware prefetcher alone kept a
  // core at 11 GB/s on Q4 (16 on F32), asking kPrefetchBytes ahead brings it to the core's share.
  constexpr int64_t kAhead = (kPrefetchBytes + Rows::kStep - 1) / Rows::kStep;
  PanelRow w;
  if constexpr (Rows::kBlocked && MR <= kGemvQuantRows) {
    for (int64_t b = k0 / kQuantBlock; b < k1 / kQuantBlock; ++b) {
      const float* ab = a + (b * kQuantBlock - k0) * MR;
      Acc<MR> sum[P];
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        if (kPrefetch && b + kAhead < k1 / kQuantBlock) rows[p].prefetch(b + kAhead);
        rows[p].block(b);
        zero<MR>(sum[p]);
      }
#pragma GCC unroll 2
      for (int k = 0; k < kQuantBlock; ++k) {
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) {
          rows[p].values(k, w);
          fma_row<MR>(ab + k * MR, w, sum[p]);
        }
      }
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
          for (int v = 0; v < kVecs; ++v) acc[p][m][v] = simd::fmadd(sum[p][m][v], rows[p].scales[v], acc[p][m][v]);
    }
  } else if constexpr (Rows::kBlocked) {
    for (int64_t b = k0 / kQuantBlock; b < k1 / kQuantBlock; ++b) {
      const float* ab = a + (b * kQuantBlock - k0) * MR;
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        if (kPrefetch && b + kAhead < k1 / kQuantBlock) rows[p].prefetch(b + kAhead);
        rows[p].block(b);
      }
#pragma GCC unroll 4
      for (int k = 0; k < kQuantBlock; ++k) {
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) {
          rows[p].row(k, w);
          fma_row<MR>(ab + k * MR, w, acc[p]);
        }
      }
    }
  } else {
#pragma GCC unroll 4
    for (int64_t k = k0; k < k1; ++k) {
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        if (kPrefetch && k + kAhead < k1) rows[p].prefetch(k + kAhead);
        rows[p].row(k, w);
        fma_row<MR>(a + (k - k0) * MR, w, acc[p]);
      }
    }
  }
}

template <int MR, int P, bool kPrefetch = false, class Rows>
inline void dot_panels(const float* a, Rows (&rows)[P], int64_t k0, int64_t k1, Acc<MR> (&acc)[P]) {
  // Work on a local copy: GCC keeps a local array in registers but writes one reached through a
  // reference back to memory on every iteration.
  Acc<MR> local[P];
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) local[p][m][v] = acc[p][m][v];
  dot_panels_impl<MR, P, kPrefetch>(a, rows, k0, k1, local);
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) acc[p][m][v] = local[p][m][v];
}

// Panels per GEMV pass for MR rows: enough accumulator chains to cover the FMA latency (8 on two
// FMA ports of latency 4), within the register file (the blocked readers keep sums and scales).
template <int MR, bool kBlocked>
constexpr int gemv_panels_per_pass() {
#if defined(__AVX512F__)
  constexpr int kRegs = 32;
#else
  constexpr int kRegs = 16;
#endif
  constexpr int chains = MR * kVecs;
  constexpr int per_panel = chains * (kBlocked ? 2 : 1) + (kBlocked ? kVecs : 0);
  int p = (8 + chains - 1) / chains;
  while (p > 1 && p * per_panel + kVecs + 4 > kRegs) --p;
  return p;
}

// Writes the MR x width tile at c (row stride ldc): c = acc (+ partial) (+ bias) (+ c when add_c).
// partial (row stride ldp, may be null) holds the sums of earlier K blocks.
template <int MR>
inline void store_tile(const Acc<MR>& acc, float* c, int64_t ldc, int width, const float* partial, int64_t ldp,
                       const float* bias, bool add_c) {
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
        if (partial) r = simd::add(r, simd::load(partial + m * ldp + v * simd::kLanes));
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
      if (partial) r += partial[m * ldp + j];
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
