#include "io/image_convert.h"

#include <string>

#include "core/error.h"

namespace falcon::io {
namespace {

// round(a * b / 255) for a, b in 0..255, exactly as Pillow's MULDIV255.
inline uint8_t mul_div_255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return uint8_t(((t >> 8) + t) >> 8);
}

inline uint8_t clip8(int v) { return uint8_t(v <= 0 ? 0 : v < 256 ? v : 255); }

// Colour channels of a premultiplied-capable mode: LA has one, RGBA three; alpha is last.
int colour_channels(const DecodedImage& image, const char* what) {
  if (image.mode == ImageMode::LA) return 1;
  if (image.mode == ImageMode::RGBA) return 3;
  throw InvalidArgument(std::string(what) + ": mode " + image_mode_name(image.mode) + " has no alpha");
}

}  // namespace

DecodedImage convert_to_rgb(const DecodedImage& image) {
  if (image.mode == ImageMode::RGB) return image;
  DecodedImage out;
  out.mode = ImageMode::RGB;
  out.width = image.width;
  out.height = image.height;
  const size_t n = size_t(image.width) * size_t(image.height);
  out.pixels.resize(n * 3);
  const uint8_t* in = image.pixels.data();
  uint8_t* o = out.pixels.data();
  switch (image.mode) {
    case ImageMode::L:
      for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[i];
      break;
    case ImageMode::Bilevel:
      for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[i] ? 255 : 0;
      break;
    case ImageMode::LA:
      for (size_t i = 0; i < n; ++i) o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = in[2 * i];
      break;
    case ImageMode::RGBA:
      for (size_t i = 0; i < n; ++i) {
        for (int c = 0; c < 3; ++c) o[3 * i + c] = in[4 * i + c];
      }
      break;
    case ImageMode::P: {
      if (image.palette.size() != 256 * 4) {
        throw InvalidArgument("convert_to_rgb: P image without a 256-entry palette");
      }
      const uint8_t* pal = image.palette.data();
      for (size_t i = 0; i < n; ++i) {
        for (int c = 0; c < 3; ++c) o[3 * i + c] = pal[in[i] * 4 + c];
      }
      break;
    }
    case ImageMode::I16: {
      for (size_t i = 0; i < n; ++i) {
        const uint16_t v = load_u16(in + 2 * i);
        o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = uint8_t(v < 256 ? v : 255);
      }
      break;
    }
    case ImageMode::CMYK:
      for (size_t i = 0; i < n; ++i) {
        const int nk = 255 - in[4 * i + 3];
        for (int c = 0; c < 3; ++c) o[3 * i + c] = clip8(nk - mul_div_255(in[4 * i + c], unsigned(nk)));
      }
      break;
    case ImageMode::RGB: break;
  }
  return out;
}

void premultiply_alpha(DecodedImage& image) {
  const int colours = colour_channels(image, "premultiply_alpha");
  const size_t step = size_t(colours) + 1;
  uint8_t* p = image.pixels.data();
  for (size_t i = 0; i + step <= image.pixels.size(); i += step) {
    const uint8_t alpha = p[i + step - 1];
    for (int c = 0; c < colours; ++c) p[i + c] = mul_div_255(p[i + c], alpha);
  }
}

void unpremultiply_alpha(DecodedImage& image) {
  const int colours = colour_channels(image, "unpremultiply_alpha");
  const size_t step = size_t(colours) + 1;
  uint8_t* p = image.pixels.data();
  for (size_t i = 0; i + step <= image.pixels.size(); i += step) {
    const int alpha = p[i + step - 1];
    if (alpha == 0 || alpha == 255) continue;
    for (int c = 0; c < colours; ++c) p[i + c] = clip8(255 * p[i + c] / alpha);
  }
}

}  // namespace falcon::io
