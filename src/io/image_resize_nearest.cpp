// Pillow's nearest-neighbour resize (its affine "scale" transform): the source coordinate of
// output pixel x is int(scale/2 + x*scale), accumulated by repeated addition in double as
// Pillow does, so the rare case where the sum lands on an integer picks the same pixel.
// Pixels whose source falls outside the image stay 0, as Pillow's fill leaves them.
#include <string>
#include <vector>

#include "core/error.h"
#include "io/image_resize.h"

namespace falcon::io {
namespace {

// Source index of each output position; -1 where it falls outside [0, in_size).
std::vector<int> nearest_sources(int in_size, int out_size) {
  const double scale = double(float(in_size)) / out_size;  // box passed as floats
  std::vector<int> sources(static_cast<size_t>(out_size));
  double pos = scale * 0.5;
  for (int i = 0; i < out_size; ++i) {
    const int src = pos < 0.0 ? -1 : int(pos);
    sources[size_t(i)] = src < in_size ? src : -1;
    pos += scale;
  }
  return sources;
}

}  // namespace

DecodedImage resize_nearest(const DecodedImage& image, int width, int height) {
  if (width < 1 || height < 1) {
    throw InvalidArgument("resize: target size " + std::to_string(width) + "x" + std::to_string(height) +
                          " must be positive");
  }
  if (width == image.width && height == image.height) return image;
  const std::vector<int> xs = nearest_sources(image.width, width);
  const std::vector<int> ys = nearest_sources(image.height, height);
  DecodedImage out;
  out.mode = image.mode;
  out.width = width;
  out.height = height;
  out.palette = image.palette;
  out.pixels.assign(out.row_bytes() * size_t(height), 0);
  const size_t bpp = size_t(bytes_per_pixel(image.mode));
  for (int y = 0; y < height; ++y) {
    if (ys[size_t(y)] < 0) continue;
    const uint8_t* src = image.row(ys[size_t(y)]);
    uint8_t* dst = out.row(y);
    for (int x = 0; x < width; ++x) {
      if (xs[size_t(x)] < 0) continue;
      for (size_t b = 0; b < bpp; ++b) dst[size_t(x) * bpp + b] = src[size_t(xs[size_t(x)]) * bpp + b];
    }
  }
  return out;
}

}  // namespace falcon::io
