#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) (+ y[m, n] when accumulate)
// x: [M, K] activations (F32 on the CPU; F32 or BF16 on CUDA); y: [M, N], x's dtype.
// w: [N, K] a weight made by prepare_linear_weight (F32, BF16, F16, Q8 or Q4 storage).
// bias: [N] F32 or null. Accumulation is in f32.
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate = false);

// Converts a [N, K] weight as read from the file (any float dtype, CPU) to `dtype` storage on
// `device`, in whatever layout that device's linear() reads fastest. The result keeps the
// logical shape [N, K] and dtype `dtype`.
Tensor prepare_linear_weight(const Tensor& w, DType dtype, Device device);

namespace cpu {
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate);
Tensor prepare_linear_weight(const Tensor& w, DType dtype);
}  // namespace cpu
namespace cuda {
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate);
Tensor prepare_linear_weight(const Tensor& w, DType dtype);
}  // namespace cuda

}  // namespace falcon::ops
