#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// The FFN gate on interleaved rows: out[m, j] = relu(a[m, 2j])^2 * a[m, 2j + 1].
// a: [M, 2F]; out: [M, F]; same dtype (computed in f32).
void squared_relu_gate(const Tensor& a, Tensor& out);

// out = relu(x)^2 elementwise (the perception heads' hidden activation). out may alias x.
void squared_relu(const Tensor& x, Tensor& out);

namespace cpu {
void squared_relu_gate(const Tensor& a, Tensor& out);
void squared_relu(const Tensor& x, Tensor& out);
}  // namespace cpu
namespace cuda {
void squared_relu_gate(const Tensor& a, Tensor& out);
void squared_relu(const Tensor& x, Tensor& out);
}  // namespace cuda

}  // namespace falcon::ops
