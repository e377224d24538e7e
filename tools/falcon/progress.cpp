#include "progress.h"

#include <unistd.h>

#include <cstdio>

namespace falcon::cli {

void Progress::update(std::string_view stage, double fraction) {
  if (quiet_) return;
  const int percent = int(fraction * 100.0 + 0.5);
  if (isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "\rloading: %-10.*s %3d%%", int(stage.size()), stage.data(), percent);
    std::fflush(stderr);
  } else if (stage != last_stage_ || percent / 25 != last_percent_ / 25) {
    std::fprintf(stderr, "loading: %.*s %d%%\n", int(stage.size()), stage.data(), percent);
  }
  last_stage_ = stage;
  last_percent_ = percent;
}

void Progress::done() {
  if (!quiet_ && isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
}

}  // namespace falcon::cli
