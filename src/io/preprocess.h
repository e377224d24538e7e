// The reference's image preprocessing (MODEL.md "Image preprocessing", data.py):
// resize_image_if_necessary(min, max) in the native mode -> convert("RGB") ->
// smart_resize(16, 56*56, 28*28*1280) with bicubic -> (v/255 - 0.5)/0.5 in float32, H x W x 3.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "io/image.h"

namespace falcon::io {

struct ImageSize {
  int width = 0;
  int height = 0;
  bool operator==(const ImageSize&) const = default;
};

struct SmartResizeParams {
  int factor = 16;                      // patch size x merge size
  int64_t min_pixels = 56 * 56;
  int64_t max_pixels = 28 * 28 * 1280;
  double max_aspect_ratio = 200.0;
};

struct PreprocessedImage {
  Tensor pixels;         // F32 [height, width, 3], values in [-1, 1]
  int orig_width = 0;    // the decoded image
  int orig_height = 0;
  int width = 0;         // the processed image: multiples of the factor
  int height = 0;
};

// resize_image_if_necessary's target: unchanged when both sides lie in [min_size, max_size].
// Throws InvalidArgument when min_size > max_size, a bound is < 1, or the result is empty.
ImageSize fit_within_bounds(ImageSize size, int min_size, int max_size);

// smart_resize's target. Throws InvalidArgument, as the reference raises ValueError, when a
// side is below the factor or the aspect ratio is over max_aspect_ratio.
ImageSize smart_resize_size(ImageSize size, const SmartResizeParams& params = {});

// The whole pipeline. min_size/max_size: 256/1024 for perception, 64/1024 for OCR.
PreprocessedImage preprocess_image(const DecodedImage& image, int min_size, int max_size,
                                   const SmartResizeParams& params = {});

// An RGB image to F32 [H, W, 3] with numpy's float32 arithmetic: (v * float32(1/255) - 0.5) / 0.5.
Tensor normalize_rgb(const DecodedImage& rgb);

// pixels [H, W, 3] (H, W multiples of patch) -> [(H/patch)*(W/patch), patch*patch*3]; row
// r*gw + c holds pixels[r*patch + i, c*patch + j, ch] in (i, j, ch) order. dtype F32, or BF16
// (each value rounded to nearest even) for a model that computes in bf16: the rounding rides
// on the copy instead of a pass of its own before the upload.
Tensor image_patches(const Tensor& pixels, int patch = 16, DType dtype = DType::F32);

}  // namespace falcon::io
