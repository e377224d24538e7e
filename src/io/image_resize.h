// Pillow-exact Image.resize((width, height)) with the default filter for the mode, as in the
// Pillow version the reference locks (12.2): NEAREST for "1" and "P", BICUBIC (a = -0.5)
// otherwise; "LA" and "RGBA" are premultiplied by alpha around the resize. The bicubic filter
// is Pillow's separable convolution (Resample.c): coefficients per output pixel, normalised,
// then for 8-bit modes turned into 22-bit fixed point; horizontal pass first, rounded to 8
// bits, then vertical — except for images over 100 times taller than wide, which Pillow
// >= 12.2 resizes vertically first.
#pragma once

#include "io/image.h"

namespace falcon::io {

// Throws InvalidArgument for a non-positive target size.
DecodedImage resize_image(const DecodedImage& image, int width, int height);

// The steps, for tests and for callers that need a filter other than the mode's default.
DecodedImage resize_bicubic(const DecodedImage& image, int width, int height);  // no premultiply
DecodedImage resize_nearest(const DecodedImage& image, int width, int height);

}  // namespace falcon::io
