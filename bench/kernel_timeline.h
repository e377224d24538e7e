// Device-side start and end of every kernel run between start() and stop(), from CUPTI's
// activity records (concurrent-kernel mode: kernels keep overlapping as they do untraced, graph
// nodes included). The benchmark's view of a CUDA graph where Nsight Systems is not installed:
// with dependent launches a kernel starts long before it can work, so what a kernel costs the
// step is the distance from the previous kernel's end to its own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace falcon::bench {

struct KernelSpan {
  std::string name;  // the kernel's name, demangled up to its template arguments
  uint64_t start_ns = 0, end_ns = 0;
  int grid_x = 0, grid_y = 0, grid_z = 0;
};

class KernelTimeline {
 public:
  // False where the build has no CUPTI (the bench then prints no timeline).
  static bool available();
  // copies: also the memory copies and sets (named "memcpy HtoD 9.4 MB", "memset 64 KB").
  void start(bool copies = false);
  // The activity records' clock now (ns), to place host moments on the timeline; 0 without CUPTI.
  static uint64_t now_ns();
  // Flushes the records and returns the kernels ordered by start.
  std::vector<KernelSpan> stop();
};

}  // namespace falcon::bench
