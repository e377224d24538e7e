#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// out[r] = the first index of the largest value in row r of x (NaN never wins).
// x: [R, N] F32/BF16; out: [R] I32 on the same device.
void argmax(const Tensor& x, Tensor& out);

namespace cpu {
void argmax(const Tensor& x, Tensor& out);
}
namespace cuda {
void argmax(const Tensor& x, Tensor& out);
}

}  // namespace falcon::ops
