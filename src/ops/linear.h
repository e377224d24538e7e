#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// y[m, n] = sum_k x[m, k] * w[n, k] (+ bias[n]) (+ y[m, n] when accumulate)
// x: [M, K] activations (F32 on the CPU; F32 or BF16 on CUDA); y: [M, N], x's dtype.
// w: [N, K] a weight made by prepare_linear_weight (F32, BF16, F16, Q8 or Q4 storage).
// bias: [N] F32 or null. Accumulation is in f32.
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate = false);

// A transform of x's rows that linear() applies before the product: the decode step's GEMV
// folds it into its own prologue on CUDA (one kernel instead of two per sub-block). The
// result is exactly that of running the transform's op into `scratch` (x's dtype, so the
// transformed input is rounded as the op would store it) and then linear() on scratch, which
// is what every other path does.
struct LinearPrologue {
  enum class Kind { RmsNorm, SquaredReluGate };
  Kind kind = Kind::RmsNorm;
  float eps = 0.f;           // RmsNorm: the weightless rms_norm's eps
  Tensor* scratch = nullptr;  // [M, K] in x's dtype, on x's device (M, K: the product's)
};
// RmsNorm: x [M, K], input rms_norm(x, no weight, eps). SquaredReluGate: x [M, 2K], input
// squared_relu_gate(x) (activation.h).
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate,
            const LinearPrologue& prologue);

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
// The fused decode GEMV (BF16 x BF16, a few rows); false when the shapes, dtypes or
// alignment do not fit it (the caller then runs the unfused pair).
bool linear_fused(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate,
                  const LinearPrologue& prologue);
Tensor prepare_linear_weight(const Tensor& w, DType dtype);
}  // namespace cuda

}  // namespace falcon::ops
