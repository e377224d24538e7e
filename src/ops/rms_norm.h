#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// out[r, :] = x[r, :] / sqrt(mean_j x[r, j]^2 + eps) * weight   (weight omitted: 1)
// x, out: [rows, n] (any leading shape flattened), same dtype; weight: [n] F32 or null.
// Computed in f32 whatever the storage dtype. out may alias x.
void rms_norm(const Tensor& x, const Tensor* weight, float eps, Tensor& out);

namespace cpu {
void rms_norm(const Tensor& x, const Tensor* weight, float eps, Tensor& out);
}
namespace cuda {
void rms_norm(const Tensor& x, const Tensor* weight, float eps, Tensor& out);
}

}  // namespace falcon::ops
