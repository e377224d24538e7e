#include "io/image_resize.h"

#include <string>

#include "core/error.h"
#include "io/image_convert.h"

namespace falcon::io {

DecodedImage resize_image(const DecodedImage& image, int width, int height) {
  if (width < 1 || height < 1) {
    throw InvalidArgument("resize: target size " + std::to_string(width) + "x" + std::to_string(height) +
                          " must be positive");
  }
  // Pillow returns a copy before any premultiplication when the size does not change.
  if (width == image.width && height == image.height) return image;
  switch (image.mode) {
    case ImageMode::Bilevel:
    case ImageMode::P: return resize_nearest(image, width, height);
    case ImageMode::LA:
    case ImageMode::RGBA: {
      DecodedImage premultiplied = image;
      premultiply_alpha(premultiplied);
      DecodedImage out = resize_bicubic(premultiplied, width, height);
      unpremultiply_alpha(out);
      return out;
    }
    case ImageMode::L:
    case ImageMode::RGB:
    case ImageMode::CMYK:
    case ImageMode::I16: return resize_bicubic(image, width, height);
  }
  throw InternalError("resize_image: unhandled mode");
}

}  // namespace falcon::io
