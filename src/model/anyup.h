// AnyUp (itok_upsampler): upsamples low-resolution features to a high-resolution grid,
// guided by the image. Every output pixel attends, through a windowed cross attention,
// to the low-resolution cells near it; queries come from the image, keys from the image
// and the features, values are the features themselves. See docs/segmentation.md.
#pragma once

#include <array>
#include <string>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "ops/math_precision.h"

namespace falcon {

// GroupNorm -> SiLU -> 1x1 conv -> GroupNorm -> SiLU -> 1x1 conv, plus the identity.
struct AnyUpResBlock {
  Tensor norm1_weight, norm1_bias;  // [qk]
  Tensor conv1;                     // [qk, qk, 1, 1]
  Tensor norm2_weight, norm2_bias;  // [qk]
  Tensor conv2;                     // [qk, qk, 1, 1]
};

// A stem (a convolution, or the feature unification basis) followed by two ResBlocks.
struct AnyUpEncoder {
  Tensor stem;
  std::array<AnyUpResBlock, 2> blocks;
};

struct AnyUpWeights {
  int64_t qk_dim = 0;
  int heads = 4;
  AnyUpEncoder image_encoder;         // stem: 1x1 conv [qk, 3, 1, 1]
  AnyUpEncoder query_encoder;         // stem: 1x1 conv [qk, qk, 1, 1]
  AnyUpEncoder key_encoder;           // stem: 1x1 conv [qk, qk, 1, 1]
  AnyUpEncoder key_features_encoder;  // stem: unification basis [qk, 1, 5, 5]
  AnyUpEncoder aggregation;           // stem: 3x3 conv [qk, 2 qk, 3, 3], reflect padding
  Tensor rope_freqs;                  // [2, qk]
  Tensor cross_conv;                  // [qk, qk, 3, 3]
  Tensor norm_q, norm_k;              // [qk] RMSNorm weights
  Tensor proj_q, proj_k;              // [qk, qk, 1, 1]: rows of in_proj_weight, as 1x1 convs
  Tensor proj_q_bias, proj_k_bias;    // [qk]
  Tensor image_scale, image_shift;    // [3]: x * 0.5 + 0.5, then ImageNet mean / std
};

// Loads every `<prefix>*` tensor of AnyUp as F32 on `device`, checking shapes (FileError
// naming the tensor). qk is read from the image encoder's stem.
AnyUpWeights load_anyup_weights(const SafetensorsFile& file, Device device,
                                const std::string& prefix = "itok_upsampler.");

// image: (3, Hc, Wc) pixel values in [-1, 1] on the canvas the features cover (zero padded);
// features: (S, h, w); out: (S, Ho, Wo), receiving the top-left Ho x Wo part of the
// (S, out_h, out_w) upsampled features (the rest is never computed). Hc and Wc should be
// multiples of out_h, out_w, h and w (the reference pools by block means). precision: how the
// convolutions multiply on CUDA (TF32: tensor cores; the CPU ignores it).
void anyup_upsample(const AnyUpWeights& w, const Tensor& image, const Tensor& features,
                    int64_t out_h, int64_t out_w, Tensor& out,
                    ops::MathPrecision precision = ops::MathPrecision::F32);

}  // namespace falcon
