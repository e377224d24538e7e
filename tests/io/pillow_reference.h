// Test helpers for falcon_io: runs tests/io/pillow_reference.py (Pillow as the independent
// reference) and turns its raw outputs back into images.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <bit>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/json_file.h"
#include "io/image.h"
#include "test_support.h"

namespace falcon::test {

// A Python that imports PIL and numpy: $FALCON_PYTHON, python3, /usr/bin/python3 (a pyenv or
// venv python3 often lacks the distribution's python3-pil). "" when there is none.
inline const std::string& python_with_pillow() {
  static const std::string found = [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("FALCON_PYTHON")) candidates.push_back(env);
    candidates.push_back("python3");
    candidates.push_back("/usr/bin/python3");
    for (const std::string& py : candidates) {
      const std::string probe = "'" + py + "' -c 'import PIL, numpy' >/dev/null 2>&1";
      if (std::system(probe.c_str()) == 0) return py;
    }
    return std::string();
  }();
  return found;
}

inline std::string make_temp_dir(const std::string& tag) {
  std::string pattern = ::testing::TempDir() + "falcon_io_" + tag + "_XXXXXX";
  if (!mkdtemp(pattern.data())) throw FileError("cannot create a temporary directory " + pattern);
  return pattern;
}

// Runs `pillow_reference.py <command> <dir>` and returns the parsed manifest.
inline nlohmann::json run_pillow_reference(const std::string& command, const std::string& dir) {
  const std::string script = tests_dir() + "/io/pillow_reference.py";
  const std::string cmd = "'" + python_with_pillow() + "' '" + script + "' " + command + " '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) throw FileError("failed: " + cmd);
  return read_json_file(dir + "/manifest.json");
}

inline std::string read_bytes(const std::string& path) { return read_binary_file(path); }

inline io::ImageMode mode_from_pillow(const std::string& name) {
  using io::ImageMode;
  if (name == "1") return ImageMode::Bilevel;
  if (name == "L") return ImageMode::L;
  if (name == "LA") return ImageMode::LA;
  if (name == "P") return ImageMode::P;
  if (name == "RGB") return ImageMode::RGB;
  if (name == "RGBA") return ImageMode::RGBA;
  if (name == "CMYK") return ImageMode::CMYK;
  if (name == "I;16" || name == "I") return ImageMode::I16;  // Pillow < 10.3 opens I;16 PNGs as "I"
  throw InvalidArgument("unknown Pillow mode " + name);
}

// An image from the script's raw layout (16-bit samples little-endian, palette RGB triples).
inline io::DecodedImage image_from_raw(const std::string& mode, int width, int height, const std::string& pixels,
                                       const std::string& palette_rgb = "") {
  static_assert(std::endian::native == std::endian::little, "raw 16-bit samples are little-endian");
  io::DecodedImage img;
  img.mode = mode_from_pillow(mode);
  img.width = width;
  img.height = height;
  img.pixels.assign(pixels.begin(), pixels.end());
  if (img.pixels.size() != img.row_bytes() * size_t(height)) {
    throw InvalidArgument("raw " + mode + " image: " + std::to_string(pixels.size()) + " bytes for " +
                          std::to_string(width) + "x" + std::to_string(height));
  }
  if (img.mode == io::ImageMode::P) {
    img.palette.assign(256 * 4, 0);
    for (size_t i = 0; i < 256; ++i) {
      img.palette[i * 4 + 3] = 255;
      for (size_t c = 0; c < 3 && i * 3 + c < palette_rgb.size(); ++c) {
        img.palette[i * 4 + c] = uint8_t(palette_rgb[i * 3 + c]);
      }
    }
  }
  return img;
}

// "" when equal, else where they first differ and how many bytes differ.
inline std::string compare_bytes(const uint8_t* got, size_t got_size, const std::string& want) {
  if (got_size != want.size()) {
    return "size " + std::to_string(got_size) + " != " + std::to_string(want.size());
  }
  size_t diffs = 0, first = 0;
  for (size_t i = 0; i < got_size; ++i) {
    if (got[i] != uint8_t(want[i]) && diffs++ == 0) first = i;
  }
  if (diffs == 0) return "";
  return std::to_string(diffs) + " bytes differ, first at " + std::to_string(first) + ": " +
         std::to_string(int(got[first])) + " != " + std::to_string(int(uint8_t(want[first])));
}

}  // namespace falcon::test

// Skips the test when no Python with Pillow is available (CI installs python3-pil).
#define FALCON_REQUIRE_PILLOW()                                                                   \
  do {                                                                                            \
    if (::falcon::test::python_with_pillow().empty()) {                                           \
      GTEST_SKIP() << "python3 with PIL and numpy not found (install python3-pil python3-numpy or " \
                      "set FALCON_PYTHON)";                                                       \
    }                                                                                             \
  } while (0)
