// Image preprocessing time per stage (docs/images.md): decode, first resize in the native mode
// (resize_image_if_necessary), convert to RGB, smart_resize, normalise; median of the runs,
// and the best total (a steadier figure on a shared machine).
//   image_preprocess_bench [--runs N] [--min 256] [--max 1024] FILE...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "core/parallel.h"
#include "io/image.h"
#include "io/image_convert.h"
#include "io/image_resize.h"
#include "io/preprocess.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 9, min_size = 256, max_size = 1024;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--min" && i + 1 < argc) min_size = std::atoi(argv[++i]);
    else if (a == "--max" && i + 1 < argc) max_size = std::atoi(argv[++i]);
    else files.push_back(a);
  }
  if (files.empty() || runs < 1) {
    std::fprintf(stderr, "usage: %s [--runs N] [--min 256] [--max 1024] FILE...\n", argv[0]);
    return 2;
  }
  std::printf("threads %d, min %d, max %d, median of %d runs (ms)\n", falcon::num_threads(), min_size, max_size,
              runs);
  std::printf("%-24s %11s %11s %8s %8s %8s %8s %8s %8s %8s\n", "file", "size", "processed", "decode", "resize1",
              "to_rgb", "smart", "norm", "total", "best");
  for (const std::string& path : files) {
    const std::string bytes = falcon::read_binary_file(path);
    std::vector<double> t_decode, t_fit, t_rgb, t_smart, t_norm, t_total;
    falcon::io::ImageSize orig, target;
    for (int r = 0; r < runs; ++r) {
      const auto start = Clock::now();
      auto t0 = Clock::now();
      const falcon::io::DecodedImage img = falcon::io::decode_image(bytes);
      t_decode.push_back(ms_since(t0));
      orig = {img.width, img.height};
      const falcon::io::ImageSize fitted = falcon::io::fit_within_bounds(orig, min_size, max_size);
      t0 = Clock::now();
      const falcon::io::DecodedImage resized =
          fitted == orig ? img : falcon::io::resize_image(img, fitted.width, fitted.height);
      t_fit.push_back(ms_since(t0));
      t0 = Clock::now();
      const falcon::io::DecodedImage rgb = falcon::io::convert_to_rgb(resized);
      t_rgb.push_back(ms_since(t0));
      target = falcon::io::smart_resize_size(fitted);
      t0 = Clock::now();
      const falcon::io::DecodedImage final_rgb = falcon::io::resize_bicubic(rgb, target.width, target.height);
      t_smart.push_back(ms_since(t0));
      t0 = Clock::now();
      const falcon::Tensor x = falcon::io::normalize_rgb(final_rgb);
      t_norm.push_back(ms_since(t0));
      t_total.push_back(ms_since(start));
    }
    const std::string name = path.substr(path.find_last_of('/') + 1);
    std::printf("%-24s %5dx%-5d %5dx%-5d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", name.c_str(), orig.width,
                orig.height, target.width, target.height, median(t_decode), median(t_fit), median(t_rgb),
                median(t_smart), median(t_norm), median(t_total), *std::min_element(t_total.begin(), t_total.end()));
  }
  return 0;
}
