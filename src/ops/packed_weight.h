// The CPU layout of a prepared linear weight (ops::cpu::prepare_linear_weight).
//
// Logical shape [N, K], dtype F32/BF16/F16/Q8/Q4, same byte size as the row-major tensor
// (N * row_bytes(dtype, K)), but the N output rows are regrouped in panels of 32 so that the
// kernels read one contiguous stream per panel and get 32 outputs per k from it: at each k the
// panel holds the 32 weights w[n0..n0+31, k] side by side (two AVX-512 vectors once decoded).
//
//   panel p = rows [32p, min(32p + 32, N)), width wp = 32 except the last (N % 32, if any);
//   panel p starts at byte p * 32 * row_bytes(dtype, K) (all earlier panels are full).
//
// Inside a panel of width wp, element (k, j) with j in [0, wp):
//   F32:  float at [k * wp + j]
//   F16:  uint16 at [k * wp + j]
//   BF16: uint16 at [k * wp + pos(j)], pos(j) = j for a partial panel; for a full panel the
//         halves are interleaved, pos(j) = 2j (j < 16), 2(j-16)+1 (j >= 16), so that one 64-byte
//         load becomes lanes 0..15 by a 16-bit shift and lanes 16..31 by a mask.
//   Q8/Q4 (K % 32 == 0): K/32 chunks, one per block b of 32 k, each chunk
//         [wp f32 scales, scale of row n0+j at j][block values]
//     Q8 values: int8 q at [kk * wp + j]                     (kk = k - 32b)   chunk = 36 wp bytes
//     Q4 values: nibble u = q + 8; full panel: byte [kk * 16 + j % 16], low nibble for j < 16,
//                high nibble for j >= 16; partial panel: element e = kk * wp + j in byte e / 2,
//                low nibble when e is even.                                   chunk = 20 wp bytes
// Scales and values are those of quantize.h. All full panels start 64-byte aligned.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace falcon::ops::cpu {

inline constexpr int kPanel = 32;

// The packed-layout facts the kernels need, computed once per call.
struct PackedWeight {
  const uint8_t* data;
  DType dtype;
  int64_t n, k;

  int64_t panels() const { return (n + kPanel - 1) / kPanel; }
  int width(int64_t p) const { return int(n - p * kPanel < kPanel ? n - p * kPanel : kPanel); }
  const uint8_t* panel(int64_t p) const { return data + size_t(p) * kPanel * row_bytes(dtype, k); }
};

// Packs one panel: `rows` is its width x k block of the row-major F32 weight; `out` receives
// width * row_bytes(dtype, k) bytes. Q8/Q4 need k % 32 == 0 and finite values.
void pack_panel(const float* rows, int width, int64_t k, DType dtype, uint8_t* out);

// Decodes rows k in [k0, k0 + kc) of panel p to f32, out[(k - k0) * 32 + j], lanes j >= width
// set to 0. For Q8/Q4, k0 and kc are multiples of 32. The one scalar-exact decoder: kernels that
// decode in registers must produce the same floats.
void decode_panel(const PackedWeight& w, int64_t p, int64_t k0, int64_t kc, float* out);

}  // namespace falcon::ops::cpu
