// COCO run-length encoding of binary masks, as pycocotools writes it (maskApi.c): runs
// over the column-major (Fortran order) pixels, alternating 0 and 1 and starting with a run
// of zeros (of length 0 when the first pixel is set); the compressed string stores each run,
// minus the run two before it from the fourth run on, in little-endian 5-bit groups with a
// continuation bit (0x20), sign-extended from bit 0x10 of the last group, plus 48 ('0').
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace falcon::io {

// Runs of a row-major 0/1 mask of height x width (any non-zero byte counts as 1).
std::vector<uint32_t> mask_to_runs(const uint8_t* mask, int height, int width);
// The row-major 0/1 mask of the runs. Throws InvalidArgument unless they cover height x width.
std::vector<uint8_t> runs_to_mask(const std::vector<uint32_t>& runs, int height, int width);

// The compressed counts string of the runs (pycocotools' rleToString).
std::string runs_to_string(const std::vector<uint32_t>& runs);
// Parses a compressed counts string (pycocotools' rleFrString). Throws InvalidArgument on a
// character outside the alphabet, a truncated group or a negative / overflowing run.
std::vector<uint32_t> string_to_runs(std::string_view counts);

// mask -> compressed string, and back.
std::string encode_coco_rle(const uint8_t* mask, int height, int width);
std::vector<uint8_t> decode_coco_rle(std::string_view counts, int height, int width);

}  // namespace falcon::io
