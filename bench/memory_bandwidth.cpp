// Memory read bandwidth probe: the denominator of the CPU decode floor (PERF.md: decode ms/token
// vs bytes of weight read per token / measured bandwidth).
//
//   memory_bandwidth [MiB ...]     default sizes 1 8 64 256 1024 2048 MiB
//
// Prints GB/s (1e9 bytes/s) for one thread and for all threads at each working-set size. Small
// sizes show the caches; sizes well beyond the last-level cache show DRAM, which is what a
// decode step streaming every layer's weight sees.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "stream_read.h"

int main(int argc, char** argv) {
  std::vector<size_t> mib;
  for (int i = 1; i < argc; ++i) mib.push_back(size_t(std::strtoull(argv[i], nullptr, 10)));
  if (mib.empty()) mib = {1, 8, 64, 256, 1024, 2048};
  const int all = omp_get_max_threads();
  std::printf("%10s %14s %14s   (read, best of passes; %d threads)\n", "MiB", "1 thread GB/s", "all GB/s", all);
  for (size_t m : mib) {
    const size_t bytes = m << 20;
    // Enough passes for ~1 GiB of traffic, at least 3, so small sizes are not timer noise.
    const int reps = int(std::max<size_t>(3, std::min<size_t>(200, (size_t(1) << 30) / bytes)));
    const double one = falcon::bench::read_bandwidth(bytes, 1, reps);
    const double many = falcon::bench::read_bandwidth(bytes, all, reps);
    std::printf("%10zu %14.1f %14.1f\n", m, one / 1e9, many / 1e9);
  }
  return 0;
}
