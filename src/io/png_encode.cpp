// libpng reports errors by longjmp: as in png_decode.cpp, every libpng call runs inside
// run_png_write_step, whose frame holds no C++ objects, and the write callback never lets an
// exception or a jump cross libpng (a failed append is recorded and reported afterwards).
#include "io/png_encode.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"

namespace falcon::io {
namespace {

struct PngWriteSession {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char error[256] = {};
  bool append_failed = false;
  std::string out;
  int width = 0, height = 0, color_type = 0;
  png_bytepp rows = nullptr;

  ~PngWriteSession() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngWriteSession*>(png_get_error_ptr(png));
  std::snprintf(s->error, sizeof s->error, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void write_to_string(png_structp png, png_bytep data, size_t n) {
  auto* s = static_cast<PngWriteSession*>(png_get_io_ptr(png));
  if (s->append_failed) return;
  try {
    s->out.append(reinterpret_cast<const char*>(data), n);
  } catch (...) {
    s->append_failed = true;
  }
}

void flush_nothing(png_structp) {}

bool run_png_write_step(PngWriteSession* s, void (*step)(PngWriteSession*)) {
  if (setjmp(png_jmpbuf(s->png))) return false;
  step(s);
  return true;
}

void write_step(PngWriteSession* s) {
  png_set_write_fn(s->png, s, write_to_string, flush_nothing);
  png_set_IHDR(s->png, s->info, png_uint_32(s->width), png_uint_32(s->height), 8, s->color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(s->png, s->info);
  png_write_image(s->png, s->rows);
  png_write_end(s->png, nullptr);
}

}  // namespace

std::string encode_png(const uint8_t* pixels, int width, int height, int channels) {
  static constexpr int kColorTypes[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                        PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  if (!pixels || width < 1 || height < 1 || channels < 1 || channels > 4 || width > (1 << 24) ||
      height > (1 << 24)) {
    throw InvalidArgument("encode_png: bad image " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                          std::to_string(channels) + (pixels ? "" : " (no pixels)"));
  }
  PngWriteSession s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_png_error, on_png_warning);
  if (s.png) s.info = png_create_info_struct(s.png);
  if (!s.png || !s.info) throw OutOfMemory("encode_png: cannot create the libpng encoder");
  s.width = width;
  s.height = height;
  s.color_type = kColorTypes[channels - 1];
  const size_t row_bytes = size_t(width) * size_t(channels);
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) rows[size_t(y)] = const_cast<png_bytep>(pixels + size_t(y) * row_bytes);
  s.rows = rows.data();
  if (!run_png_write_step(&s, write_step)) {
    throw InternalError(std::string("encode_png: libpng: ") + (s.error[0] ? s.error : "error"));
  }
  if (s.append_failed) throw OutOfMemory("encode_png: out of memory for the encoded file");
  return std::move(s.out);
}

}  // namespace falcon::io
