// Pillow's mode conversions that preprocessing needs (Convert.c semantics, own code).
#pragma once

#include "io/image.h"

namespace falcon::io {

// Image.convert("RGB"): "L"/"LA" replicate the gray value, "RGBA"/"LA" drop alpha without
// compositing, "P" looks up the palette (transparency ignored), "1" gives 0/255, "I;16"
// clips at 255 (values above 255 become white), "CMYK" gives
// nk - nk*c/255 per channel with nk = 255 - k (integer, rounded as Pillow's MULDIV255).
DecodedImage convert_to_rgb(const DecodedImage& image);

// Image.convert("RGBa" / "La") in place: colour = round(colour * alpha / 255).
void premultiply_alpha(DecodedImage& image);
// Back to "RGBA" / "LA" in place: colour = min(255, colour * 255 / alpha) (integer division),
// unchanged where alpha is 0 or 255.
void unpremultiply_alpha(DecodedImage& image);

}  // namespace falcon::io
