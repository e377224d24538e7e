#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// out = x converted elementwise to out's dtype (F32/BF16/F16, same shape, same device).
void convert(const Tensor& x, Tensor& out);
// out = a + b elementwise (same shape and dtype). out may alias a or b.
void add(const Tensor& a, const Tensor& b, Tensor& out);

namespace cpu {
void convert(const Tensor& x, Tensor& out);
void add(const Tensor& a, const Tensor& b, Tensor& out);
}  // namespace cpu
namespace cuda {
void convert(const Tensor& x, Tensor& out);
void add(const Tensor& a, const Tensor& b, Tensor& out);
}  // namespace cuda

}  // namespace falcon::ops
