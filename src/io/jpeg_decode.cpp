// JPEG decoding through libjpeg-turbo with the settings Pillow uses (JpegDecode.c): libjpeg's
// defaults (JDCT_ISLOW, fancy upsampling, block smoothing), output colour space GRAYSCALE,
// RGB or CMYK by component count. Pillow reads CMYK as "CMYK;I" (Adobe's inverted polarity),
// so CMYK samples are inverted here too. Warnings about corrupt data are ignored, as Pillow
// ignores them; running out of data is an error.
//
// libjpeg reports errors by longjmp. Every libjpeg call runs inside run_jpeg_step, whose frame
// holds no C++ objects, and the callbacks hold none either, so the jump skips no destructor.
#include <cstddef>
#include <cstdio>  // jpeglib.h needs FILE

#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/image_codecs.h"

namespace falcon::io::detail {
namespace {

// libjpeg-turbo's TurboJPEG caps progressive scans at 500 for the same reason: each scan
// revisits the whole coefficient buffer, so a file of tiny scans is a CPU bomb.
constexpr int kMaxScans = 1000;

struct JpegSession {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr errors{};
  jpeg_source_mgr source{};
  jpeg_progress_mgr progress{};
  std::jmp_buf jump{};
  bool created = false;
  char error[JMSG_LENGTH_MAX] = {};
  const unsigned char* data = nullptr;
  size_t size = 0;
  unsigned char* out = nullptr;  // destination for read_pixels_step
  size_t out_row_bytes = 0;

  ~JpegSession() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

JpegSession* session_of(j_common_ptr cinfo) { return static_cast<JpegSession*>(cinfo->client_data); }

[[noreturn]] void fail_with(JpegSession* s, const char* message) {
  std::snprintf(s->error, sizeof s->error, "%s", message);
  std::longjmp(s->jump, 1);
}

void on_error_exit(j_common_ptr cinfo) {
  JpegSession* s = session_of(cinfo);
  (*cinfo->err->format_message)(cinfo, s->error);
  std::longjmp(s->jump, 1);
}

void on_output_message(j_common_ptr) {}  // libjpeg would print warnings to stderr

void on_progress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) fail_with(session_of(cinfo), "too many progressive scans");
}

// The whole file is in memory, so the source is handed over at once and needing more is EOF.
void init_source(j_decompress_ptr) {}
void term_source(j_decompress_ptr) {}
boolean fill_input_buffer(j_decompress_ptr cinfo) {
  fail_with(session_of(reinterpret_cast<j_common_ptr>(cinfo)), "truncated file (premature end of data)");
}
void skip_input_data(j_decompress_ptr cinfo, long n) {
  if (n <= 0) return;
  jpeg_source_mgr* src = cinfo->src;
  if (size_t(n) > src->bytes_in_buffer) {
    fail_with(session_of(reinterpret_cast<j_common_ptr>(cinfo)), "truncated file (premature end of data)");
  }
  src->next_input_byte += n;
  src->bytes_in_buffer -= size_t(n);
}

bool run_jpeg_step(JpegSession* s, void (*step)(JpegSession*)) {
  if (setjmp(s->jump)) return false;
  step(s);
  return true;
}

void read_header_step(JpegSession* s) {
  s->cinfo.err = jpeg_std_error(&s->errors);
  s->errors.error_exit = on_error_exit;
  s->errors.output_message = on_output_message;
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  s->cinfo.client_data = s;

  s->source.next_input_byte = s->data;
  s->source.bytes_in_buffer = s->size;
  s->source.init_source = init_source;
  s->source.fill_input_buffer = fill_input_buffer;
  s->source.skip_input_data = skip_input_data;
  s->source.resync_to_restart = jpeg_resync_to_restart;
  s->source.term_source = term_source;
  s->cinfo.src = &s->source;

  s->progress.progress_monitor = on_progress;
  s->cinfo.progress = &s->progress;

  jpeg_read_header(&s->cinfo, TRUE);
}

void start_step(JpegSession* s) { jpeg_start_decompress(&s->cinfo); }

void read_pixels_step(JpegSession* s) {
  j_decompress_ptr cinfo = &s->cinfo;
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW rows[16];
    const JDIMENSION first = cinfo->output_scanline;
    const JDIMENSION n = std::min<JDIMENSION>(16, cinfo->output_height - first);
    for (JDIMENSION i = 0; i < n; ++i) rows[i] = s->out + size_t(first + i) * s->out_row_bytes;
    if (jpeg_read_scanlines(cinfo, rows, n) == 0) fail_with(s, "decoder made no progress");
  }
}

[[noreturn]] void fail(const JpegSession& s, const char* stage) {
  throw FileError(std::string("JPEG: ") + stage + ": " + (s.error[0] ? s.error : "libjpeg error"));
}

}  // namespace

DecodedImage decode_jpeg(std::string_view bytes, const DecodeLimits& limits) {
  JpegSession s;
  s.data = reinterpret_cast<const unsigned char*>(bytes.data());
  s.size = bytes.size();
  if (!run_jpeg_step(&s, read_header_step)) fail(s, "header");
  check_declared_size(ImageFormat::JPEG, s.cinfo.image_width, s.cinfo.image_height, limits);

  DecodedImage img;
  switch (s.cinfo.num_components) {  // Pillow's "layers"
    case 1:
      img.mode = ImageMode::L;
      s.cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case 3:
      img.mode = ImageMode::RGB;
      s.cinfo.out_color_space = JCS_RGB;
      break;
    case 4:
      img.mode = ImageMode::CMYK;
      s.cinfo.out_color_space = JCS_CMYK;
      break;
    default:
      throw Unsupported("JPEG: " + std::to_string(s.cinfo.num_components) +
                        "-component images are not supported");
  }
  if (!run_jpeg_step(&s, start_step)) fail(s, "start");
  img.width = int(s.cinfo.output_width);
  img.height = int(s.cinfo.output_height);
  if (s.cinfo.output_components != bytes_per_pixel(img.mode)) {
    throw FileError("JPEG: decoder gives " + std::to_string(s.cinfo.output_components) +
                    " components for a " + image_mode_name(img.mode) + " image");
  }
  img.pixels.resize(img.row_bytes() * size_t(img.height));
  s.out = img.pixels.data();
  s.out_row_bytes = img.row_bytes();
  if (!run_jpeg_step(&s, read_pixels_step)) fail(s, "image data");

  if (img.mode == ImageMode::CMYK) {
    for (uint8_t& v : img.pixels) v = uint8_t(255 - v);
  }
  return img;
}

}  // namespace falcon::io::detail
