// Fuzzes image decoding (PNG, JPEG, WebP) and the preprocessing of whatever decodes, with a
// small pixel limit so every input stays fast. Traps when a decoded or preprocessed result is
// inconsistent; typed falcon errors are the expected way to refuse bad input.
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "io/image.h"
#include "io/image_convert.h"
#include "io/png_encode.h"
#include "io/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace falcon;
  io::DecodeLimits limits;
  limits.max_pixels = 1 << 20;
  try {
    const io::DecodedImage img = io::decode_image(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    if (img.width < 1 || img.height < 1 || int64_t(img.width) * img.height > limits.max_pixels ||
        img.pixels.size() != img.row_bytes() * size_t(img.height) ||
        (img.mode == io::ImageMode::P) != (img.palette.size() == 1024)) {
      __builtin_trap();
    }
    // What preprocessing sees; a PNG of it must decode back to the same pixels.
    const io::DecodedImage rgb = io::convert_to_rgb(img);
    const io::DecodedImage back = io::decode_image(io::encode_png(rgb.pixels.data(), rgb.width, rgb.height, 3), limits);
    if (back.pixels != rgb.pixels) __builtin_trap();

    const io::PreprocessedImage pre = io::preprocess_image(img, 16, 64);
    if (pre.pixels.shape() != Shape{pre.height, pre.width, 3} || pre.height % 16 || pre.width % 16) __builtin_trap();
    const float* x = pre.pixels.data<float>();
    for (int64_t i = 0; i < pre.pixels.numel(); ++i) {
      if (!(x[i] >= -1.0f && x[i] <= 1.0f)) __builtin_trap();
    }
    if (io::image_patches(pre.pixels).dim(0) != int64_t(pre.height / 16) * (pre.width / 16)) __builtin_trap();
  } catch (const Error&) {
  }
  return 0;
}
