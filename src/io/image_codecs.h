// Internal to falcon_io: one decoder per format, called by decode_image after detection.
#pragma once

#include <cstdint>
#include <string_view>

#include "io/image.h"

namespace falcon::io::detail {

DecodedImage decode_png(std::string_view bytes, const DecodeLimits& limits);
DecodedImage decode_jpeg(std::string_view bytes, const DecodeLimits& limits);
DecodedImage decode_webp(std::string_view bytes, const DecodeLimits& limits);

// Checks the size a header declares against the limits, before anything is allocated.
// Throws FileError for an empty size, InvalidArgument for one over the limits.
void check_declared_size(ImageFormat format, int64_t width, int64_t height,
                         const DecodeLimits& limits);

}  // namespace falcon::io::detail
