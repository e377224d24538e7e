// The segmentation stage of Falcon Perception: image features from the prompt's img-token
// hidden states (conv_segm + AnyUp), one mask embedding per <|seg|> token (proj_segm), and
// binary masks at the original image size. MODEL.md "Segmentation features".
#pragma once

#include <cstdint>
#include <vector>

#include "core/safetensors.h"
#include "core/tensor.h"
#include "model/anyup.h"
#include "model/config.h"
#include "ops/math_precision.h"

namespace falcon {

struct SegmentationWeights {
  Tensor conv;                   // [S, D, 3, 3] F32 (conv_segm)
  Tensor conv_bias;              // [S] F32
  std::vector<Tensor> mlp;       // linear [D, D] each (proj_segm.layers.j)
  std::vector<Tensor> mlp_bias;  // [D] F32
  Tensor pixel_layer;            // linear [S, D] (proj_segm.pixel_layer)
  AnyUpWeights anyup;            // itok_upsampler.*
  int64_t dim = 0, segm_dim = 0;
};

// Loads conv_segm, proj_segm and AnyUp for a config with do_segmentation, checking every
// shape (FileError naming the tensor). proj_segm's linear weights are stored as linear_dtype.
SegmentationWeights load_segmentation_weights(const ModelConfig& config,
                                              const SafetensorsFile& file, Device device,
                                              DType linear_dtype = DType::F32);

// The square canvas, in patches, that the segmentation features are computed on:
// T = ceil(max_image_size / patch_size) (the reference pads every image to max_image_size).
int64_t segmentation_canvas(int64_t max_image_size, int64_t patch_size);

struct SegmentationFeatures {
  Tensor lr;  // (S, T, T) conv_segm output on the canvas
  Tensor hr;  // (S, 8 gh, 8 gw) AnyUp features of the image area
};

// img_hidden: (gh * gw, D) final-norm hidden states of the img tokens, row-major over the
// patch grid; pixels: [16 gh, 16 gw, 3] the preprocessed image in [-1, 1]; canvas: T.
// precision: how the convolutions multiply on CUDA (TF32: tensor cores; the CPU ignores it).
SegmentationFeatures segmentation_features(
    const SegmentationWeights& w, const Tensor& img_hidden, int64_t gh, int64_t gw,
    const Tensor& pixels, int64_t canvas, ops::MathPrecision precision = ops::MathPrecision::F32);

// AnyUp alone: lr (S, T, T) features on the canvas and the [16 gh, 16 gw, 3] image ->
// (S, 8 gh, 8 gw).
Tensor upsample_segmentation_features(const SegmentationWeights& w, const Tensor& lr,
                                      const Tensor& pixels,
                                      ops::MathPrecision precision = ops::MathPrecision::F32);

// proj_segm: (num_segm_layers - 1) x [Linear + bias, relu^2], then pixel_layer.
// hidden: [n, D] final-norm hidden states that produced <|seg|> tokens -> [n, S] F32.
Tensor segmentation_embeddings(const SegmentationWeights& w, const Tensor& hidden);

// Mask logits (K, h, w) = embeds (K, S) . hr (S, h, w).
Tensor mask_logits(const Tensor& hr, const Tensor& embeds,
                   ops::MathPrecision precision = ops::MathPrecision::F32);

// Binary masks [K, height, width] U8 (CPU): the logits resized bilinearly (align_corners
// false) to the original image size, then sigmoid(logit) > threshold (the reference's order).
Tensor binary_masks(const Tensor& logits, int64_t height, int64_t width, float threshold = 0.3f);

}  // namespace falcon
