// Progress of long work on stderr: a rewriting line on a terminal, stage lines otherwise.
#pragma once

#include <string>
#include <string_view>

namespace falcon::cli {

class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet) {}
  void update(std::string_view stage, double fraction);
  void done();

 private:
  bool quiet_;
  std::string last_stage_;
  int last_percent_ = -1;
};

}  // namespace falcon::cli
