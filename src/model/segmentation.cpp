#include "model/segmentation.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "model/weights.h"
#include "ops/activation.h"
#include "ops/bilinear_resize.h"
#include "ops/chw_layout.h"
#include "ops/conv2d.h"
#include "ops/convert.h"
#include "ops/linear.h"

namespace falcon {
namespace {

// AnyUp upsamples the patch grid 8x (half the 16-pixel patch resolution).
constexpr int64_t kUpsampleRatio = 8;
constexpr int64_t kPixelsPerPatch = 16;

Tensor as_f32(const Tensor& t) {
  if (t.dtype() == DType::F32) return t;
  Tensor f = Tensor::empty(t.shape(), DType::F32, t.device());
  ops::convert(t, f);
  return f;
}

}  // namespace

SegmentationWeights load_segmentation_weights(const ModelConfig& c, const SafetensorsFile& f,
                                              Device d, DType linear_dtype) {
  if (!c.do_segmentation)
    throw InvalidArgument("load_segmentation_weights: the config has no segmentation");
  SegmentationWeights w;
  w.dim = c.dim;
  w.segm_dim = c.segm_out_dim;
  const int64_t D = c.dim, S = c.segm_out_dim;
  w.conv = load_f32(f, "conv_segm.weight", {S, D, 3, 3}, d);
  w.conv_bias = load_f32(f, "conv_segm.bias", {S}, d);
  for (int j = 0; j + 1 < c.num_segm_layers; ++j) {
    const std::string p = "proj_segm.layers." + std::to_string(j);
    w.mlp.push_back(
        ops::prepare_linear_weight(checked_view(f, p + ".weight", {D, D}), linear_dtype, d));
    w.mlp_bias.push_back(load_f32(f, p + ".bias", {D}, d));
  }
  w.pixel_layer = ops::prepare_linear_weight(
      checked_view(f, "proj_segm.pixel_layer.weight", {S, D}), linear_dtype, d);
  w.anyup = load_anyup_weights(f, d);
  if (S % w.anyup.heads != 0) {
    throw FileError(f.path() + ": segm_out_dim " + std::to_string(S) + " does not split into " +
                    std::to_string(w.anyup.heads) + " AnyUp heads");
  }
  return w;
}

int64_t segmentation_canvas(int64_t max_image_size, int64_t patch_size) {
  return (max_image_size + patch_size - 1) / patch_size;
}

SegmentationFeatures segmentation_features(const SegmentationWeights& w, const Tensor& img_hidden,
                                           int64_t gh, int64_t gw, const Tensor& pixels,
                                           int64_t canvas, ops::MathPrecision precision) {
  const int64_t D = w.dim, S = w.segm_dim, T = canvas;
  if (img_hidden.rank() != 2 || img_hidden.dim(0) != gh * gw || img_hidden.dim(1) != D) {
    throw InvalidArgument("segmentation_features: img hidden states " + img_hidden.describe() +
                          " are not " + std::to_string(gh) + " x " + std::to_string(gw) +
                          " rows of " + std::to_string(D));
  }
  if (gh > T || gw > T) {
    throw InvalidArgument("segmentation_features: a " + std::to_string(gh) + " x " +
                          std::to_string(gw) + " patch grid does not fit the " + std::to_string(T) +
                          " x " + std::to_string(T) + " canvas");
  }
  const Device dev = img_hidden.device();
  SegmentationFeatures out;
  // Hidden states as a (D, gh, gw) map, zero-padded to the canvas, through conv_segm.
  Tensor grid = Tensor::empty({D, T, T}, DType::F32, dev);  // (D, T, T)
  ops::hwc_to_chw(as_f32(img_hidden).reshape({gh, gw, D}), grid);
  out.lr = Tensor::empty({S, T, T}, DType::F32, dev);  // (S, T, T)
  ops::conv2d(grid, w.conv, &w.conv_bias, 1, ops::PadMode::Zeros, out.lr, false, {}, precision);
  grid = Tensor();
  out.hr = upsample_segmentation_features(w, out.lr, pixels, precision);  // (S, 8 gh, 8 gw)
  return out;
}

Tensor upsample_segmentation_features(const SegmentationWeights& w, const Tensor& lr,
                                      const Tensor& pixels, ops::MathPrecision precision) {
  const int64_t S = lr.dim(0), T = lr.dim(1);
  if (lr.rank() != 3 || lr.dim(2) != T || pixels.rank() != 3 || pixels.dim(2) != 3 ||
      pixels.dim(0) % kPixelsPerPatch != 0 || pixels.dim(1) % kPixelsPerPatch != 0 ||
      pixels.dim(0) > kPixelsPerPatch * T || pixels.dim(1) > kPixelsPerPatch * T) {
    throw InvalidArgument("upsample_segmentation_features: features " + lr.describe() +
                          " and image " + pixels.describe() + " do not describe one square canvas");
  }
  const int64_t gh = pixels.dim(0) / kPixelsPerPatch, gw = pixels.dim(1) / kPixelsPerPatch;
  const Device dev = lr.device();
  Tensor image = Tensor::empty({3, kPixelsPerPatch * T, kPixelsPerPatch * T}, DType::F32,
                               dev);  // (3, 16T, 16T)
  ops::hwc_to_chw(as_f32(pixels), image);
  Tensor hr = Tensor::empty({S, kUpsampleRatio * gh, kUpsampleRatio * gw}, DType::F32,
                            dev);  // (S, 8gh, 8gw)
  anyup_upsample(w.anyup, image, lr, kUpsampleRatio * T, kUpsampleRatio * T, hr, precision);
  return hr;
}

Tensor segmentation_embeddings(const SegmentationWeights& w, const Tensor& hidden) {
  if (hidden.rank() != 2 || hidden.dim(1) != w.dim) {
    throw InvalidArgument("segmentation_embeddings: hidden " + hidden.describe() + " is not [n, " +
                          std::to_string(w.dim) + "]");
  }
  const int64_t n = hidden.dim(0);
  Tensor x = as_f32(hidden);  // (n, D)
  for (size_t j = 0; j < w.mlp.size(); ++j) {
    Tensor y = Tensor::empty({n, w.dim}, DType::F32, hidden.device());  // (n, D)
    ops::linear(x, w.mlp[j], &w.mlp_bias[j], y);
    ops::squared_relu(y, y);
    x = y;
  }
  Tensor embeds = Tensor::empty({n, w.segm_dim}, DType::F32, hidden.device());  // (n, S)
  ops::linear(x, w.pixel_layer, nullptr, embeds);
  return embeds;
}

Tensor mask_logits(const Tensor& hr, const Tensor& embeds, ops::MathPrecision precision) {
  if (hr.rank() != 3 || embeds.rank() != 2 || embeds.dim(1) != hr.dim(0)) {
    throw InvalidArgument("mask_logits: embeddings " + embeds.describe() +
                          " do not match features " + hr.describe());
  }
  // A 1x1 convolution with the K embeddings as its kernels.
  const int64_t K = embeds.dim(0);
  Tensor logits = Tensor::empty({K, hr.dim(1), hr.dim(2)}, DType::F32, hr.device());  // (K, h, w)
  ops::conv2d(hr, as_f32(embeds).reshape({K, hr.dim(0), 1, 1}), nullptr, 0, ops::PadMode::Zeros,
              logits, false, {}, precision);
  return logits;
}

Tensor binary_masks(const Tensor& logits, int64_t height, int64_t width, float threshold) {
  if (logits.rank() != 3 || height < 1 || width < 1) {
    throw InvalidArgument("binary_masks: logits " + logits.describe() + " and size " +
                          std::to_string(height) + "x" + std::to_string(width));
  }
  const int64_t K = logits.dim(0), h = logits.dim(1), w = logits.dim(2);
  Tensor masks = Tensor::empty({K, height, width}, DType::U8);  // (K, H0, W0)
  // One mask at a time keeps the float buffer to one original-size plane.
  Tensor plane = Tensor::empty({1, height, width}, DType::F32, logits.device());  // (1, H0, W0)
  for (int64_t k = 0; k < K; ++k) {
    const Tensor src = logits.rows(k, k + 1);  // (1, h, w)
    if (h == height && w == width) {
      plane.copy_from(src);
    } else {
      ops::bilinear_resize(src, plane);
    }
    const Tensor host = plane.on_cpu() ? plane : plane.to(Device::CPU);
    const float* p = host.data<float>();
    uint8_t* m = masks.data<uint8_t>() + k * height * width;
    // torch: sigmoid in float, compared with 0.3 rounded to float.
    for (int64_t i = 0; i < height * width; ++i)
      m[i] = (1.f / (1.f + std::exp(-p[i]))) > threshold ? 1 : 0;
  }
  return masks;
}

}  // namespace falcon
