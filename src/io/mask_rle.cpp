#include "io/mask_rle.h"

#include "core/error.h"

namespace falcon::io {

std::vector<uint32_t> mask_to_runs(const uint8_t* mask, int height, int width) {
  if (height < 0 || width < 0 || (!mask && height * int64_t(width) > 0)) {
    throw InvalidArgument("mask_to_runs: bad mask of " + std::to_string(height) + "x" +
                          std::to_string(width));
  }
  std::vector<uint32_t> runs;
  uint8_t current = 0;
  uint32_t count = 0;
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < height; ++y) {
      const uint8_t v = mask[int64_t(y) * width + x] ? 1 : 0;
      if (v != current) {
        runs.push_back(count);
        count = 0;
        current = v;
      }
      ++count;
    }
  }
  runs.push_back(count);
  return runs;
}

std::vector<uint8_t> runs_to_mask(const std::vector<uint32_t>& runs, int height, int width) {
  const int64_t n = int64_t(height) * width;
  int64_t total = 0;
  for (uint32_t r : runs) total += r;
  if (height < 0 || width < 0 || total != n) {
    throw InvalidArgument("COCO RLE: runs cover " + std::to_string(total) +
                          " pixels, the mask has " + std::to_string(n));
  }
  std::vector<uint8_t> mask(static_cast<size_t>(n));
  int64_t i = 0;  // column-major position
  for (size_t r = 0; r < runs.size(); ++r) {
    const uint8_t v = r % 2;
    for (uint32_t k = 0; k < runs[r]; ++k, ++i) mask[size_t((i % height) * width + i / height)] = v;
  }
  return mask;
}

std::string runs_to_string(const std::vector<uint32_t>& runs) {
  std::string s;
  for (size_t i = 0; i < runs.size(); ++i) {
    // pycocotools codes the difference to the run two before only from the fourth run on.
    int64_t x = runs[i];
    if (i > 2) x -= int64_t(runs[i - 2]);
    bool more = true;
    while (more) {
      int c = int(x & 0x1f);
      x >>= 5;  // arithmetic shift: negative deltas end in a group with bit 0x10 set
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(char(c + 48));
    }
  }
  return s;
}

std::vector<uint32_t> string_to_runs(std::string_view counts) {
  std::vector<uint32_t> runs;
  size_t p = 0;
  while (p < counts.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      if (p >= counts.size()) throw InvalidArgument("COCO RLE: string ends inside a run");
      const int c = int(static_cast<unsigned char>(counts[p])) - 48;
      if (c < 0 || c > 63)
        throw InvalidArgument("COCO RLE: character '" + std::string(1, counts[p]) +
                              "' out of range");
      if (k > 12) throw InvalidArgument("COCO RLE: run too long");
      x |= int64_t(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= int64_t(-1) * (int64_t(1) << (5 * k));  // sign-extend
    }
    if (runs.size() > 2) x += int64_t(runs[runs.size() - 2]);
    if (x < 0 || x > int64_t(UINT32_MAX))
      throw InvalidArgument("COCO RLE: run length " + std::to_string(x));
    runs.push_back(uint32_t(x));
  }
  return runs;
}

std::string encode_coco_rle(const uint8_t* mask, int height, int width) {
  return runs_to_string(mask_to_runs(mask, height, width));
}

std::vector<uint8_t> decode_coco_rle(std::string_view counts, int height, int width) {
  return runs_to_mask(string_to_runs(counts), height, width);
}

}  // namespace falcon::io
