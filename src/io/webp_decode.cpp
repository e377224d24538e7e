// WebP decoding through libwebp. Pillow (through WebPAnimDecoder, default options) gives
// "RGBA" when the bitstream declares alpha and "RGB" otherwise; a still image's only frame is
// a key frame, decoded without blending, so WebPDecodeRGB(A)Into gives the same pixels.
// Animated files are refused rather than silently reduced to their first frame.
#include <webp/decode.h>

#include <string>

#include "core/error.h"
#include "io/image_codecs.h"

namespace falcon::io::detail {
namespace {

const char* status_name(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file (not enough data)";
  }
  return "unknown error";
}

}  // namespace

DecodedImage decode_webp(std::string_view bytes, const DecodeLimits& limits) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(data, bytes.size(), &features);
  if (status != VP8_STATUS_OK) throw FileError(std::string("WebP: header: ") + status_name(status));
  if (features.has_animation) throw Unsupported("WebP: animated images are not supported");
  check_declared_size(ImageFormat::WebP, features.width, features.height, limits);

  DecodedImage img;
  img.mode = features.has_alpha ? ImageMode::RGBA : ImageMode::RGB;
  img.width = features.width;
  img.height = features.height;
  img.pixels.resize(img.row_bytes() * size_t(img.height));
  const int stride = int(img.row_bytes());
  const uint8_t* decoded =
      img.mode == ImageMode::RGBA
          ? WebPDecodeRGBAInto(data, bytes.size(), img.pixels.data(), img.pixels.size(), stride)
          : WebPDecodeRGBInto(data, bytes.size(), img.pixels.data(), img.pixels.size(), stride);
  if (!decoded) throw FileError("WebP: image data: corrupt or truncated");
  return img;
}

}  // namespace falcon::io::detail
