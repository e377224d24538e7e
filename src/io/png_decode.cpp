// PNG decoding through libpng into Pillow's modes (PngImagePlugin's table):
//   gray 1 -> "1", gray 2/4/8 -> "L" (scaled to 0..255), gray 16 -> "I;16",
//   RGB 8/16 -> "RGB", palette 1..8 -> "P", gray+alpha 8 -> "LA", gray+alpha 16 -> "RGBA",
//   RGBA 8/16 -> "RGBA"; 16-bit samples keep their high byte, as Pillow's ";16B" unpackers do.
// No gamma, ICC or sBIT processing: Pillow ignores them too.
//
// libpng reports errors by longjmp. Every libpng call runs inside run_png_step, whose frame
// holds no C++ objects, and the callbacks hold none either, so the jump skips no destructor;
// all state lives in a PngSession owned by the caller, which cleans up normally.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/image_codecs.h"

namespace falcon::io::detail {
namespace {

struct PngSession {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const unsigned char* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char error[256] = {};
  // From the header.
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  size_t row_bytes = 0;       // after the transforms
  png_bytepp rows = nullptr;  // destination rows for read_image_step

  ~PngSession() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngSession*>(png_get_error_ptr(png));
  std::snprintf(s->error, sizeof s->error, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // benign: libpng carries on

void read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* s = static_cast<PngSession*>(png_get_io_ptr(png));
  if (n > s->size - s->pos) png_error(png, "truncated file");
  std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
}

bool run_png_step(PngSession* s, void (*step)(PngSession*)) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  step(s);
  return true;
}

void read_header_step(PngSession* s) {
  png_set_read_fn(s->png, s, read_from_memory);
  // The caller checks the pixel count itself; libpng's own width cap (1e6) would pre-empt it.
  png_set_user_limits(s->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  // A bad CRC anywhere is an error (Pillow refuses such chunks as well).
  png_set_crc_action(s->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_read_info(s->png, s->info);
  png_get_IHDR(s->png, s->info, &s->width, &s->height, &s->bit_depth, &s->color_type, &s->interlace,
               nullptr, nullptr);
}

void set_transforms_step(PngSession* s) {
  if (s->bit_depth < 8) png_set_packing(s->png);  // one sample per byte, values not scaled
  png_set_interlace_handling(s->png);
  png_read_update_info(s->png, s->info);
  s->row_bytes = png_get_rowbytes(s->png, s->info);
}

void read_image_step(PngSession* s) { png_read_image(s->png, s->rows); }

[[noreturn]] void fail(const PngSession& s, const char* stage) {
  throw FileError(std::string("PNG: ") + stage + ": " + (s.error[0] ? s.error : "libpng error"));
}

ImageMode mode_for(int color_type, int bit_depth) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY:
      return bit_depth == 1 ? ImageMode::Bilevel : bit_depth == 16 ? ImageMode::I16 : ImageMode::L;
    case PNG_COLOR_TYPE_RGB: return ImageMode::RGB;
    case PNG_COLOR_TYPE_PALETTE: return ImageMode::P;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return bit_depth == 16 ? ImageMode::RGBA : ImageMode::LA;
    case PNG_COLOR_TYPE_RGB_ALPHA: return ImageMode::RGBA;
  }
  throw FileError("PNG: unknown color type " + std::to_string(color_type));
}

// Palette as 256 RGBA entries: PLTE colours, tRNS alphas, opaque black past the end.
std::vector<uint8_t> read_palette(const PngSession& s) {
  std::vector<uint8_t> palette(256 * 4, 0);
  for (int i = 0; i < 256; ++i) palette[i * 4 + 3] = 255;
  png_colorp colors = nullptr;
  int num_colors = 0;
  if (png_get_PLTE(s.png, s.info, &colors, &num_colors) & PNG_INFO_PLTE) {
    for (int i = 0; i < num_colors && i < 256; ++i) {
      palette[i * 4 + 0] = colors[i].red;
      palette[i * 4 + 1] = colors[i].green;
      palette[i * 4 + 2] = colors[i].blue;
    }
  }
  png_bytep alphas = nullptr;
  int num_alphas = 0;
  if (png_get_tRNS(s.png, s.info, &alphas, &num_alphas, nullptr) & PNG_INFO_tRNS) {
    for (int i = 0; i < num_alphas && i < 256; ++i) palette[i * 4 + 3] = alphas[i];
  }
  return palette;
}

// Gray samples of 1, 2 or 4 bits (unpacked one per byte) to Pillow's 8-bit values.
void scale_low_depth_gray(std::vector<uint8_t>& pixels, int bit_depth) {
  const int factor = bit_depth == 1 ? 255 : bit_depth == 2 ? 85 : 17;
  for (uint8_t& v : pixels) v = uint8_t(v ? v * factor : 0);
}

// 16-bit big-endian samples to the image's mode: high bytes, or host-endian uint16 for "I;16".
void reduce_16_bit(const std::vector<uint8_t>& raw, int color_type, DecodedImage& img) {
  const size_t pixels = size_t(img.width) * size_t(img.height);
  uint8_t* out = img.pixels.data();
  const uint8_t* in = raw.data();
  if (img.mode == ImageMode::I16) {
    for (size_t i = 0; i < pixels; ++i) store_u16(out + 2 * i, uint16_t(in[2 * i] << 8 | in[2 * i + 1]));
  } else if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {  // Pillow's "LA;16B" into RGBA
    for (size_t i = 0; i < pixels; ++i, in += 4, out += 4) {
      out[0] = out[1] = out[2] = in[0];
      out[3] = in[2];
    }
  } else {
    const size_t samples = pixels * size_t(bytes_per_pixel(img.mode));
    for (size_t i = 0; i < samples; ++i) out[i] = in[2 * i];
  }
}

}  // namespace

DecodedImage decode_png(std::string_view bytes, const DecodeLimits& limits) {
  PngSession s;
  s.data = reinterpret_cast<const unsigned char*>(bytes.data());
  s.size = bytes.size();
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  if (!s.png || !s.info) throw OutOfMemory("PNG: cannot create the libpng decoder");

  if (!run_png_step(&s, read_header_step)) fail(s, "header");
  check_declared_size(ImageFormat::PNG, s.width, s.height, limits);
  if (!run_png_step(&s, set_transforms_step)) fail(s, "header");

  DecodedImage img;
  img.mode = mode_for(s.color_type, s.bit_depth);
  img.width = int(s.width);
  img.height = int(s.height);
  if (img.mode == ImageMode::P) img.palette = read_palette(s);
  img.pixels.resize(img.row_bytes() * size_t(img.height));

  // 8-bit (and unpacked low-depth) rows already have the mode's layout; 16-bit ones go
  // through a temporary buffer.
  std::vector<uint8_t> raw;
  uint8_t* dest = img.pixels.data();
  if (s.bit_depth == 16) {
    raw.resize(s.row_bytes * size_t(img.height));
    dest = raw.data();
  } else if (s.row_bytes != img.row_bytes()) {
    throw InternalError("PNG: libpng row of " + std::to_string(s.row_bytes) + " bytes, expected " +
                        std::to_string(img.row_bytes()));
  }
  std::vector<png_bytep> rows(size_t(img.height));
  for (int y = 0; y < img.height; ++y) rows[size_t(y)] = dest + size_t(y) * s.row_bytes;
  s.rows = rows.data();
  if (!run_png_step(&s, read_image_step)) fail(s, "image data");

  if (s.bit_depth == 16) {
    reduce_16_bit(raw, s.color_type, img);
  } else if (s.color_type == PNG_COLOR_TYPE_GRAY && s.bit_depth < 8) {
    scale_low_depth_gray(img.pixels, s.bit_depth);
  }
  return img;
}

}  // namespace falcon::io::detail
