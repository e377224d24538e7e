// Normalisations across the channels of each pixel of a [C, H, W] image (the per-token
// norms of a transformer, in image layout).
//
// channel_l2_normalize: out[:, p] = x[:, p] / max(||x[:, p]||_2, eps)  (F.normalize, dim=1;
//   torch's eps is 1e-12).
// channel_rms_norm: out[:, p] = x[:, p] / sqrt(mean_c x[c, p]^2 + eps) * weight
//   (nn.RMSNorm over the channels; weight [C] F32).
// x, out: [C, ...] F32 (pixels flattened); out may alias x.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void channel_l2_normalize(const Tensor& x, float eps, Tensor& out);
void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);

namespace cpu {
void channel_l2_normalize(const Tensor& x, float eps, Tensor& out);
void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);
}  // namespace cpu
namespace cuda {
void channel_l2_normalize(const Tensor& x, float eps, Tensor& out);
void channel_rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);
}  // namespace cuda

}  // namespace falcon::ops
