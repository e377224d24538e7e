// Pillow's bicubic resampling (Resample.c semantics, own code): per output pixel, the input
// window [xmin, xmin + count) and its filter weights, normalised to sum 1. 8-bit modes run in
// 22-bit fixed point (weights rounded half away from zero; sums start at 0.5 and are clipped
// to 0..255 after each pass); "I;16" runs in double with Pillow 12.2's byte-wise clipping.
// Every floating-point expression keeps Pillow's order; falcon_io builds with
// -ffp-contract=off so no FMA changes a rounding.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "io/image_resize.h"

namespace falcon::io {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kBicubicSupport = 2.0;

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Weights for resampling in_size samples to out_size over the whole input range.
struct Kernel {
  int ksize = 0;                // weights per output sample (some trailing ones unused)
  std::vector<int> first;       // first input sample of each output sample
  std::vector<int> count;       // number of input samples used
  std::vector<double> weights;  // out_size * ksize
  std::vector<int32_t> fixed;   // the same in fixed point, for 8-bit data
};

Kernel bicubic_kernel(int in_size, int out_size) {
  // Pillow passes the box as floats: (double)(float(in_size) - 0.f) / out_size.
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = kBicubicSupport * filterscale;
  const double inv_filterscale = 1.0 / filterscale;
  Kernel k;
  k.ksize = int(std::ceil(support)) * 2 + 1;
  k.first.resize(size_t(out_size));
  k.count.resize(size_t(out_size));
  k.weights.assign(size_t(out_size) * size_t(k.ksize), 0.0);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    // int() truncates towards zero, as Pillow's C casts do.
    const int xmin = std::max(int(center - support + 0.5), 0);
    const int xmax = std::min(int(center + support + 0.5), in_size) - xmin;
    double* w = &k.weights[size_t(xx) * size_t(k.ksize)];
    double sum = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bicubic_filter((x + xmin - center + 0.5) * inv_filterscale);
      sum += w[x];
    }
    if (sum != 0.0) {
      for (int x = 0; x < xmax; ++x) w[x] /= sum;
    }
    k.first[size_t(xx)] = xmin;
    k.count[size_t(xx)] = std::max(xmax, 0);
  }
  k.fixed.resize(k.weights.size());
  for (size_t i = 0; i < k.weights.size(); ++i) {
    const double v = k.weights[i] * (1 << kPrecisionBits);
    k.fixed[i] = int32_t(v < 0 ? -0.5 + v : 0.5 + v);
  }
  return k;
}

inline uint8_t clip8_fixed(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return uint8_t(v >> kPrecisionBits);
}

// Pillow 12.2 stores a 16-bit result as bytes CLIP8(v % 256), CLIP8(v >> 8): negatives give 0,
// values past 65535 keep their low byte under a 0xFF high byte.
inline uint16_t clip16_bytewise(int v) {
  if (v <= 0) return 0;
  if (v <= 65535) return uint16_t(v);
  return uint16_t(0xFF00 | (v & 0xFF));
}

inline int round_half_away(double v) { return int(v >= 0.0 ? v + 0.5F : v - 0.5F); }

// Rows per parallel chunk: enough multiply-adds (~0.1 ms) that a small image runs inline
// instead of paying for waking threads.
int64_t rows_per_chunk(size_t work_per_row) {
  constexpr size_t kMinWorkPerChunk = size_t(1) << 18;
  return int64_t(std::max<size_t>(1, kMinWorkPerChunk / std::max<size_t>(work_per_row, 1)));
}

// The horizontal pass works on blocks of kBlockRows rows laid out column by column, so each
// output column accumulates kBlockRows * C contiguous samples with one weight per input
// column: the same vectorisable loop as the vertical pass (3x faster than per-pixel sums).
constexpr int kBlockRows = 16;

template <int C>
void horizontal_8bit(const uint8_t* in, int in_w, uint8_t* out, int out_w, int rows, const Kernel& k) {
  constexpr size_t kLanes = size_t(kBlockRows) * C;
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  const size_t block_work = size_t(out_w) * size_t(k.ksize) * kLanes;
  parallel_for(blocks, rows_per_chunk(block_work), [&](int64_t b0, int64_t b1) {
    std::vector<uint8_t> columns(size_t(in_w) * kLanes, 0);  // [x][row in block][channel]
    alignas(64) int32_t acc[kLanes];
    for (int64_t b = b0; b < b1; ++b) {
      const int first_row = int(b) * kBlockRows;
      const int n = std::min(kBlockRows, rows - first_row);
      for (int r = 0; r < n; ++r) {
        const uint8_t* src = in + size_t(first_row + r) * size_t(in_w) * C;
        uint8_t* col = columns.data() + size_t(r) * C;
        for (int x = 0; x < in_w; ++x) {
          for (int c = 0; c < C; ++c) col[size_t(x) * kLanes + size_t(c)] = src[size_t(x) * C + size_t(c)];
        }
      }
      for (int xx = 0; xx < out_w; ++xx) {
        const int32_t* w = &k.fixed[size_t(xx) * size_t(k.ksize)];
        const uint8_t* col = columns.data() + size_t(k.first[size_t(xx)]) * kLanes;
        for (size_t i = 0; i < kLanes; ++i) acc[i] = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < k.count[size_t(xx)]; ++x, col += kLanes) {
          const int32_t wx = w[x];
          for (size_t i = 0; i < kLanes; ++i) acc[i] += col[i] * wx;
        }
        for (int r = 0; r < n; ++r) {
          uint8_t* dst = out + size_t(first_row + r) * size_t(out_w) * C + size_t(xx) * C;
          for (int c = 0; c < C; ++c) dst[c] = clip8_fixed(acc[size_t(r) * C + size_t(c)]);
        }
      }
    }
  });
}

// Output row yy mixes input rows first[yy] - row_offset ... ; samples of a row are contiguous,
// so each row is accumulated whole (vectorisable).
void vertical_8bit(const uint8_t* in, size_t row_len, uint8_t* out, int out_h, int row_offset,
                   const Kernel& k) {
  parallel_for(out_h, rows_per_chunk(row_len * size_t(k.ksize)), [&](int64_t y0, int64_t y1) {
    std::vector<int32_t> acc(row_len);
    for (int64_t yy = y0; yy < y1; ++yy) {
      std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
      const int32_t* w = &k.fixed[size_t(yy) * size_t(k.ksize)];
      const int first = k.first[size_t(yy)] - row_offset;
      for (int y = 0; y < k.count[size_t(yy)]; ++y) {
        const uint8_t* src = in + size_t(first + y) * row_len;
        const int32_t wy = w[y];
        for (size_t i = 0; i < row_len; ++i) acc[i] += src[i] * wy;
      }
      uint8_t* dst = out + size_t(yy) * row_len;
      for (size_t i = 0; i < row_len; ++i) dst[i] = clip8_fixed(acc[i]);
    }
  });
}

void horizontal_16bit(const uint8_t* in, int in_w, uint8_t* out, int out_w, int rows, const Kernel& k) {
  parallel_for(rows, rows_per_chunk(size_t(out_w) * size_t(k.ksize)), [&](int64_t r0, int64_t r1) {
    for (int64_t y = r0; y < r1; ++y) {
      const uint8_t* src = in + size_t(y) * size_t(in_w) * 2;
      uint8_t* dst = out + size_t(y) * size_t(out_w) * 2;
      for (int xx = 0; xx < out_w; ++xx) {
        const double* w = &k.weights[size_t(xx) * size_t(k.ksize)];
        const uint8_t* s = src + size_t(k.first[size_t(xx)]) * 2;
        double acc = 0.0;
        for (int x = 0; x < k.count[size_t(xx)]; ++x) acc += load_u16(s + 2 * x) * w[x];
        store_u16(dst + size_t(xx) * 2, clip16_bytewise(round_half_away(acc)));
      }
    }
  });
}

void vertical_16bit(const uint8_t* in, int width, uint8_t* out, int out_h, int row_offset, const Kernel& k) {
  parallel_for(out_h, rows_per_chunk(size_t(width) * size_t(k.ksize)), [&](int64_t y0, int64_t y1) {
    for (int64_t yy = y0; yy < y1; ++yy) {
      const double* w = &k.weights[size_t(yy) * size_t(k.ksize)];
      const int first = k.first[size_t(yy)] - row_offset;
      uint8_t* dst = out + size_t(yy) * size_t(width) * 2;
      for (int x = 0; x < width; ++x) {
        double acc = 0.0;
        for (int y = 0; y < k.count[size_t(yy)]; ++y) {
          acc += load_u16(in + (size_t(first + y) * size_t(width) + size_t(x)) * 2) * w[y];
        }
        store_u16(dst + size_t(x) * 2, clip16_bytewise(round_half_away(acc)));
      }
    }
  });
}

// One pass along x over `rows` rows of `src`.
void horizontal_pass(const DecodedImage& src, int first_row, int rows, int out_w, const Kernel& k,
                     DecodedImage& dst) {
  dst.mode = src.mode;
  dst.width = out_w;
  dst.height = rows;
  dst.pixels.resize(dst.row_bytes() * size_t(rows));
  const uint8_t* in = src.row(first_row);
  switch (src.mode) {
    case ImageMode::I16:
      horizontal_16bit(in, src.width, dst.pixels.data(), out_w, rows, k);
      return;
    case ImageMode::L: return horizontal_8bit<1>(in, src.width, dst.pixels.data(), out_w, rows, k);
    case ImageMode::LA: return horizontal_8bit<2>(in, src.width, dst.pixels.data(), out_w, rows, k);
    case ImageMode::RGB: return horizontal_8bit<3>(in, src.width, dst.pixels.data(), out_w, rows, k);
    case ImageMode::RGBA:
    case ImageMode::CMYK: return horizontal_8bit<4>(in, src.width, dst.pixels.data(), out_w, rows, k);
    case ImageMode::Bilevel:
    case ImageMode::P: break;
  }
  throw InternalError("resize_bicubic: unexpected mode");
}

// One pass along y; src rows are numbered from row_offset (the rows the kernel starts at).
void vertical_pass(const DecodedImage& src, int row_offset, int out_h, const Kernel& k, DecodedImage& dst) {
  dst.mode = src.mode;
  dst.width = src.width;
  dst.height = out_h;
  dst.pixels.resize(dst.row_bytes() * size_t(out_h));
  if (src.mode == ImageMode::I16) {
    vertical_16bit(src.pixels.data(), src.width, dst.pixels.data(), out_h, row_offset, k);
  } else {
    vertical_8bit(src.pixels.data(), src.row_bytes(), dst.pixels.data(), out_h, row_offset, k);
  }
}

}  // namespace

DecodedImage resize_bicubic(const DecodedImage& image, int width, int height) {
  if (width < 1 || height < 1) {
    throw InvalidArgument("resize: target size " + std::to_string(width) + "x" + std::to_string(height) +
                          " must be positive");
  }
  if (image.mode == ImageMode::P || image.mode == ImageMode::Bilevel) {
    throw InvalidArgument(std::string("resize_bicubic: mode ") + image_mode_name(image.mode) +
                          " cannot be filtered (Pillow uses nearest for it)");
  }
  if (width == image.width && height == image.height) return image;
  const bool need_horizontal = width != image.width;
  const bool need_vertical = height != image.height;
  const Kernel kx = bicubic_kernel(image.width, width);
  const Kernel ky = bicubic_kernel(image.height, height);

  DecodedImage tmp, out;
  // Pillow >= 12.2 resizes very tall images vertically first (Image.resize).
  const bool tall = int64_t(image.height) > int64_t(image.width) * 100 && height < image.height;
  if (tall) {
    vertical_pass(image, 0, height, ky, tmp);
    if (!need_horizontal) return tmp;
    horizontal_pass(tmp, 0, height, width, kx, out);
    return out;
  }
  if (!need_horizontal) {
    vertical_pass(image, 0, height, ky, out);
    return out;
  }
  // Only the input rows the vertical pass reads go through the horizontal pass.
  const int first_row = ky.first.front();
  const int last_row = ky.first.back() + ky.count.back();
  horizontal_pass(image, first_row, last_row - first_row, width, kx, tmp);
  if (!need_vertical) return tmp;
  vertical_pass(tmp, first_row, height, ky, out);
  return out;
}

}  // namespace falcon::io
