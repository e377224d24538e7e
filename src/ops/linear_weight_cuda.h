// The CUDA layout of prepared linear weights, and the dequantising kernels that read it.
// Private to src/ops (no CUDA types here).
//
// A prepared weight keeps its logical shape [N, K] and its dtype, and the byte size
// N * row_bytes(dtype, K) that Tensor allocates for it:
//   F32, BF16, F16: row-major [N, K], as is.
//   Q8: int8 q [N, K] row-major, then f32 scales [N, K/32] (scale of block b of row n at n*K/32 + b).
//   Q4: bytes [N, K/2] row-major, byte i of row n holding k = 2i in its low nibble and k = 2i+1 in
//       its high nibble as u = q + 8, then f32 scales [N, K/32].
// Scales and q are exactly those of quantize.h, so every element is float(q) * scale.
#pragma once

#include "core/tensor.h"

namespace falcon::ops::cuda {

// Builds the layout above on the GPU from a CPU weight of any float dtype: uploaded as stored,
// quantised by a kernel to exactly quantize.h's scales and q. InvalidArgument for a non-finite
// weight.
Tensor prepare_quantized_weight(const Tensor& w, DType dtype);

// Rows [n0, n1) of a prepared weight (any dtype above) as `to` (F32 or BF16) values, row-major
// [n1 - n0, K], into the device buffer `out`: float(q) * scale (or the stored value), rounded
// once to `to`. Queued on the ops' stream.
void expand_weight_rows(const Tensor& w, int64_t n0, int64_t n1, DType to, void* out);

// y = x . w^T (+ bias) (+ y) with f32 products and sums, decoding any weight dtype in registers.
// The path for pairs cuBLASLt cannot take exactly (F16/Q8/Q4 weights, F32 activations against
// BF16 weights): a warp-per-output GEMV for up to 8 rows, a tiled SIMT GEMM above.
void linear_dequant(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate);

// y = bias (or 0) (+ y): the K = 0 product.
void linear_empty_k(const Tensor* bias, Tensor& y, bool accumulate);

}  // namespace falcon::ops::cuda
