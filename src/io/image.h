// Decoded images in their native Pillow mode, and decoding from memory (PNG, JPEG, WebP).
// The reference opens images with Pillow and only later converts them to RGB, after a first
// resize in the native mode; keeping the mode here lets that resize be Pillow-exact.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace falcon::io {

enum class ImageFormat : uint8_t { PNG, JPEG, WebP };
const char* image_format_name(ImageFormat f);

// Pillow's modes, with the same pixel values Pillow holds for them.
enum class ImageMode : uint8_t {
  Bilevel,  // "1": one byte per pixel, 0 or 255
  L,        // "L": 8-bit gray
  LA,       // "LA": gray, alpha
  P,        // "P": palette index; see DecodedImage::palette
  RGB,      // "RGB"
  RGBA,     // "RGBA", alpha not premultiplied
  CMYK,     // "CMYK", Pillow's polarity (0 = no ink)
  I16,      // "I;16": 16-bit gray, one host-endian uint16_t per pixel
};
const char* image_mode_name(ImageMode m);  // "1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"
int bytes_per_pixel(ImageMode m);

struct DecodedImage {
  ImageMode mode = ImageMode::RGB;
  int width = 0;
  int height = 0;
  // Rows top to bottom, pixels interleaved, no padding: height * width * bytes_per_pixel(mode).
  std::vector<uint8_t> pixels;
  // "P" only: 256 RGBA entries (alpha from tRNS, else 255). Entries past the file's palette
  // are opaque black, as in Pillow >= 10.1 (earlier versions used a gray ramp).
  std::vector<uint8_t> palette;

  size_t row_bytes() const { return size_t(width) * size_t(bytes_per_pixel(mode)); }
  const uint8_t* row(int y) const { return pixels.data() + size_t(y) * row_bytes(); }
  uint8_t* row(int y) { return pixels.data() + size_t(y) * row_bytes(); }
};

// "I;16" samples live in DecodedImage::pixels as host-endian uint16_t; these access them
// without aliasing the byte buffer.
inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, sizeof v); }

// What decode_image accepts; checked from the header before any pixel memory is allocated.
struct DecodeLimits {
  // Pillow's Image.MAX_IMAGE_PIXELS (a decompression-bomb guard).
  int64_t max_pixels = 89'478'485;
  // The reference's smart_resize refuses long/short > 200; refusing it at the header saves
  // decoding an image that could never be preprocessed. <= 0 disables the check.
  double max_aspect_ratio = 200.0;
};

// The format named by the magic bytes. Throws InvalidArgument when empty, Unsupported for a
// recognised but unsupported format (GIF, BMP, TIFF, ...), FileError for anything else.
ImageFormat detect_image_format(std::string_view bytes);

// Decodes a whole PNG / JPEG / WebP file held in memory, keeping the mode Pillow would give
// it. EXIF orientation is not applied (the reference does not either). Throws
// InvalidArgument (empty input, over the limits), FileError (corrupt or truncated data),
// Unsupported (animated WebP, 2-channel JPEG, other formats), OutOfMemory.
DecodedImage decode_image(std::string_view bytes, const DecodeLimits& limits = {});

// Reads and decodes a file; error messages start with the path.
DecodedImage decode_image_file(const std::string& path, const DecodeLimits& limits = {});

}  // namespace falcon::io
