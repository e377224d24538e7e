// Format detection by magic bytes, size checks shared by the decoders, and dispatch.
#include <algorithm>
#include <new>
#include <string>

#include "core/error.h"
#include "core/json_file.h"
#include "io/image.h"
#include "io/image_codecs.h"

namespace falcon::io {

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::PNG: return "PNG";
    case ImageFormat::JPEG: return "JPEG";
    case ImageFormat::WebP: return "WebP";
  }
  return "?";
}

const char* image_mode_name(ImageMode m) {
  switch (m) {
    case ImageMode::Bilevel: return "1";
    case ImageMode::L: return "L";
    case ImageMode::LA: return "LA";
    case ImageMode::P: return "P";
    case ImageMode::RGB: return "RGB";
    case ImageMode::RGBA: return "RGBA";
    case ImageMode::CMYK: return "CMYK";
    case ImageMode::I16: return "I;16";
  }
  return "?";
}

int bytes_per_pixel(ImageMode m) {
  switch (m) {
    case ImageMode::Bilevel:
    case ImageMode::L:
    case ImageMode::P: return 1;
    case ImageMode::LA:
    case ImageMode::I16: return 2;
    case ImageMode::RGB: return 3;
    case ImageMode::RGBA:
    case ImageMode::CMYK: return 4;
  }
  return 0;
}

namespace {

bool starts_with(std::string_view bytes, size_t offset, std::string_view magic) {
  return bytes.size() >= offset + magic.size() && bytes.substr(offset, magic.size()) == magic;
}

// Formats Pillow opens but this engine does not; named so the error says what the file is.
const char* unsupported_format_name(std::string_view b) {
  if (starts_with(b, 0, "GIF87a") || starts_with(b, 0, "GIF89a")) return "GIF";
  if (starts_with(b, 0, "BM")) return "BMP";
  if (starts_with(b, 0, std::string_view("II*\0", 4)) || starts_with(b, 0, std::string_view("MM\0*", 4))) {
    return "TIFF";
  }
  if (starts_with(b, 4, "ftyp")) return "HEIF/AVIF";
  if (starts_with(b, 0, std::string_view("\0\0\1\0", 4))) return "ICO";
  return nullptr;
}

}  // namespace

ImageFormat detect_image_format(std::string_view bytes) {
  if (bytes.empty()) throw InvalidArgument("image: no data (0 bytes)");
  if (starts_with(bytes, 0, "\x89PNG\r\n\x1a\n")) return ImageFormat::PNG;
  if (starts_with(bytes, 0, "\xff\xd8\xff")) return ImageFormat::JPEG;
  if (starts_with(bytes, 0, "RIFF") && starts_with(bytes, 8, "WEBP")) return ImageFormat::WebP;
  if (const char* name = unsupported_format_name(bytes)) {
    throw Unsupported(std::string("image: ") + name + " images are not supported (PNG, JPEG, WebP are)");
  }
  throw FileError("image: unknown format (not PNG, JPEG or WebP; " + std::to_string(bytes.size()) +
                  " bytes)");
}

namespace detail {

void check_declared_size(ImageFormat format, int64_t width, int64_t height, const DecodeLimits& limits) {
  const std::string what = std::string(image_format_name(format)) + " image " + std::to_string(width) +
                           "x" + std::to_string(height);
  if (width <= 0 || height <= 0) throw FileError(what + ": empty size in the header");
  if (width * height > limits.max_pixels) {
    throw InvalidArgument(what + ": " + std::to_string(width * height) +
                          " pixels is over the limit of " + std::to_string(limits.max_pixels) +
                          " (possible decompression bomb)");
  }
  const double ratio = double(std::max(width, height)) / double(std::min(width, height));
  if (limits.max_aspect_ratio > 0 && ratio > limits.max_aspect_ratio) {
    throw InvalidArgument(what + ": aspect ratio " + std::to_string(ratio) + " is over " +
                          std::to_string(limits.max_aspect_ratio));
  }
}

}  // namespace detail

DecodedImage decode_image(std::string_view bytes, const DecodeLimits& limits) {
  const ImageFormat format = detect_image_format(bytes);
  try {
    switch (format) {
      case ImageFormat::PNG: return detail::decode_png(bytes, limits);
      case ImageFormat::JPEG: return detail::decode_jpeg(bytes, limits);
      case ImageFormat::WebP: return detail::decode_webp(bytes, limits);
    }
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(std::string(image_format_name(format)) + ": out of memory for the pixels");
  }
  throw InternalError("decode_image: unhandled format");
}

DecodedImage decode_image_file(const std::string& path, const DecodeLimits& limits) {
  // No sensible file is larger than its largest image stored uncompressed (16-bit RGBA).
  constexpr int64_t kMaxFileBytes = int64_t(1) << 40;
  const int64_t pixels = std::clamp<int64_t>(limits.max_pixels, 0, kMaxFileBytes / 8);
  const size_t max_bytes = size_t(pixels * 8 + (int64_t(1) << 20));
  const std::string bytes = read_binary_file(path, max_bytes);
  try {
    return decode_image(bytes, limits);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(path + ": " + e.what());
  } catch (const Unsupported& e) {
    throw Unsupported(path + ": " + e.what());
  } catch (const FileError& e) {
    throw FileError(path + ": " + e.what());
  }
}

}  // namespace falcon::io
