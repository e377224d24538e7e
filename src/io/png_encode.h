// PNG encoding of 8-bit pixel buffers (overlays, mask pictures).
#pragma once

#include <cstdint>
#include <string>

namespace falcon::io {

// Encodes width x height pixels of `channels` interleaved 8-bit samples (1 gray, 2 gray+alpha,
// 3 RGB, 4 RGBA), rows top to bottom without padding, as a PNG file.
// Throws InvalidArgument for a bad size, channel count or null pixels.
std::string encode_png(const uint8_t* pixels, int width, int height, int channels);

}  // namespace falcon::io
