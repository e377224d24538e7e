#include "io/preprocess.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/image_convert.h"
#include "io/image_resize.h"

namespace falcon::io {
namespace {

std::string size_str(ImageSize s) { return std::to_string(s.width) + "x" + std::to_string(s.height); }

// Python's round(): halves go to the even neighbour.
int64_t round_half_even(double x) {
  const double lower = std::floor(x);
  const double diff = x - lower;
  int64_t r = int64_t(lower);
  if (diff > 0.5 || (diff == 0.5 && r % 2 != 0)) ++r;
  return r;
}

// numpy: x.astype(float32) * (1/255) is computed in float32, then (x - 0.5) / 0.5 in float32.
std::array<float, 256> normalization_table() {
  std::array<float, 256> table{};
  const float scale = float(1.0 / 255.0);
  for (int v = 0; v < 256; ++v) {
    const float rescaled = float(v) * scale;
    table[size_t(v)] = (rescaled - 0.5f) / 0.5f;
  }
  return table;
}

}  // namespace

ImageSize fit_within_bounds(ImageSize size, int min_size, int max_size) {
  if (min_size < 1 || max_size < min_size) {
    throw InvalidArgument("image size bounds: need 1 <= min_image_size <= max_image_size, got " +
                          std::to_string(min_size) + " and " + std::to_string(max_size));
  }
  const int w = size.width, h = size.height;
  if (w < 1 || h < 1) throw InvalidArgument("image size bounds: empty image " + size_str(size));
  if (min_size <= w && w <= max_size && min_size <= h && h <= max_size) return size;
  // Python: aspect_ratio = w / h (double); int() truncates.
  const double aspect = double(w) / double(h);
  const bool vertical = w < h;
  int64_t nw, nh;
  const int side = (w < min_size || h < min_size) ? min_size : max_size;
  if (vertical) {
    nw = side;
    nh = int64_t(double(nw) / aspect);
  } else {
    nh = side;
    nw = int64_t(double(nh) * aspect);
  }
  if (nw > max_size) {
    nw = max_size;
    nh = int64_t(double(nw) / aspect);
  }
  if (nh > max_size) {
    nh = max_size;
    nw = int64_t(double(nh) * aspect);
  }
  if (nw < 1 || nh < 1) {
    throw InvalidArgument("image " + size_str(size) + " resized into [" + std::to_string(min_size) + ", " +
                          std::to_string(max_size) + "] would be empty (" + std::to_string(nw) + "x" +
                          std::to_string(nh) + ")");
  }
  return {int(nw), int(nh)};
}

ImageSize smart_resize_size(ImageSize size, const SmartResizeParams& p) {
  const int64_t h = size.height, w = size.width, f = p.factor;
  if (f < 1) throw InvalidArgument("smart_resize: factor must be positive");
  if (h < f || w < f) {
    throw InvalidArgument("image " + size_str(size) + " (after resizing) has a side under " +
                          std::to_string(f) + " pixels");
  }
  const double ratio = double(std::max(h, w)) / double(std::min(h, w));
  if (ratio > p.max_aspect_ratio) {
    throw InvalidArgument("image " + size_str(size) + ": aspect ratio " + std::to_string(ratio) +
                          " must be smaller than " + std::to_string(p.max_aspect_ratio));
  }
  int64_t hb = round_half_even(double(h) / double(f)) * f;
  int64_t wb = round_half_even(double(w) / double(f)) * f;
  if (hb * wb > p.max_pixels) {
    const double beta = std::sqrt(double(h * w) / double(p.max_pixels));
    hb = int64_t(std::floor(double(h) / beta / double(f))) * f;
    wb = int64_t(std::floor(double(w) / beta / double(f))) * f;
  } else if (hb * wb < p.min_pixels) {
    const double beta = std::sqrt(double(p.min_pixels) / double(h * w));
    hb = int64_t(std::ceil(double(h) * beta / double(f))) * f;
    wb = int64_t(std::ceil(double(w) * beta / double(f))) * f;
  }
  if (hb < 1 || wb < 1 || hb > (int64_t(1) << 24) || wb > (int64_t(1) << 24)) {
    throw InvalidArgument("smart_resize: image " + size_str(size) + " gives an unusable size " +
                          std::to_string(wb) + "x" + std::to_string(hb));
  }
  return {int(wb), int(hb)};
}

Tensor normalize_rgb(const DecodedImage& rgb) {
  if (rgb.mode != ImageMode::RGB) {
    throw InvalidArgument(std::string("normalize_rgb: mode ") + image_mode_name(rgb.mode) + ", expected RGB");
  }
  static const std::array<float, 256> table = normalization_table();
  Tensor out = Tensor::empty({rgb.height, rgb.width, 3}, DType::F32);
  float* o = out.data<float>();
  const uint8_t* in = rgb.pixels.data();
  const size_t n = rgb.pixels.size();
  for (size_t i = 0; i < n; ++i) o[i] = table[in[i]];
  return out;
}

PreprocessedImage preprocess_image(const DecodedImage& image, int min_size, int max_size,
                                   const SmartResizeParams& params) {
  const ImageSize orig{image.width, image.height};
  const ImageSize fitted = fit_within_bounds(orig, min_size, max_size);
  const ImageSize target = smart_resize_size(fitted, params);
  PreprocessedImage out;
  if (image.mode == ImageMode::RGB && fitted == orig && target == orig) {
    out.pixels = normalize_rgb(image);  // nothing to resize or convert: no copies on the way
  } else {
    // Resize in the native mode first (Pillow's default filter for it), then convert.
    const DecodedImage rgb = fitted == orig ? convert_to_rgb(image)
                                            : convert_to_rgb(resize_image(image, fitted.width, fitted.height));
    out.pixels = normalize_rgb(resize_bicubic(rgb, target.width, target.height));
  }
  out.orig_width = orig.width;
  out.orig_height = orig.height;
  out.width = target.width;
  out.height = target.height;
  return out;
}

Tensor image_patches(const Tensor& pixels, int patch, DType dtype) {
  if (!pixels.defined() || !pixels.on_cpu() || pixels.dtype() != DType::F32 || pixels.rank() != 3 ||
      pixels.dim(2) != 3 || patch < 1 || pixels.dim(0) % patch != 0 || pixels.dim(1) % patch != 0) {
    throw InvalidArgument("image_patches: expected CPU F32 [H, W, 3] with H, W multiples of " +
                          std::to_string(patch) + ", got " + pixels.describe());
  }
  if (dtype != DType::F32 && dtype != DType::BF16) throw InvalidArgument("image_patches: F32 or BF16 output");
  const int64_t gh = pixels.dim(0) / patch, gw = pixels.dim(1) / patch, width = pixels.dim(1);
  const int64_t row_len = int64_t(patch) * 3;  // one patch row: patch pixels x 3 channels
  Tensor out = Tensor::empty({gh * gw, int64_t(patch) * patch * 3}, dtype);
  const float* in = pixels.data<float>();
  for (int64_t r = 0; r < gh; ++r) {
    for (int64_t c = 0; c < gw; ++c) {
      const int64_t first = (r * gw + c) * patch * row_len;
      for (int64_t i = 0; i < patch; ++i) {
        const float* src = in + ((r * patch + i) * width + c * patch) * 3;
        if (dtype == DType::F32) {
          std::memcpy(out.data<float>() + first + i * row_len, src, size_t(row_len) * sizeof(float));
        } else {
          uint16_t* dst = out.data<uint16_t>() + first + i * row_len;
          for (int64_t j = 0; j < row_len; ++j) dst[j] = f32_to_bf16(src[j]);
        }
      }
    }
  }
  return out;
}

}  // namespace falcon::io
