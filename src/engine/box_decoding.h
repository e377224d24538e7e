// The perception heads' bins turned into values, with the engine's rules (MODEL.md
// "Decoding and the perception heads").
#pragma once

#include <array>
#include <vector>

namespace falcon {

// Center (x, y) in [0, 1): argmax of each half of the coord logits, bin / bins. With a
// threshold > 0, a prediction within `threshold` (max |dx|, |dy|) of an earlier one has its
// bins masked and the argmax re-taken, up to 10 times; the original stays if none is free.
std::array<float, 2> decode_coord(const float* logits, int bins_total,
                                  const std::vector<std::array<float, 2>>& earlier, float threshold);

// Size (h, w) in [1/bins, 1]: bin b of each half, 2^((b / (bins - 1)) * log2(bins) - log2(bins)).
std::array<float, 2> decode_size(const float* logits, int bins_total);

// A box on the original image: ((x - w/2) W, (y - h/2) H, (x + w/2) W, (y + h/2) H).
std::array<float, 4> pixel_box(float x, float y, float h, float w, int image_width, int image_height);

}  // namespace falcon
