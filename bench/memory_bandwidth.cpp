// Memory read bandwidth probe: the denominator of the CPU decode floor (PERF.md: decode ms/token
// vs bytes of weight read per token / measured bandwidth).
//
//   memory_bandwidth [MiB ...]     default sizes 1 8 64 256 1024 2048 MiB
//
// Prints GB/s (1e9 bytes/s) for one thread and for all threads at each working-set size, reading
// 1 to 8 streams side by side per thread. Small sizes show the caches; sizes well beyond the
// last-level cache show DRAM, which is what a decode step streaming every layer's weight sees.
// The floor uses the best DRAM figure.
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
  std::printf("read GB/s, best of passes; S streams read side by side per thread, 256 B / 4 KiB of each in turn\n");
  std::printf("%8s %10s %10s   %d threads: %6s %6s %6s %6s %6s %6s %6s %6s %8s\n", "MiB", "1t S=1", "1t best", all, "S1/256",
              "S1/4K", "S2/256", "S2/4K", "S4/256", "S4/4K", "S8/256", "S8/4K", "best");
  for (size_t m : mib) {
    const size_t bytes = m << 20;
    // Enough passes for ~1 GiB of traffic, at least 3, so small sizes are not timer noise.
    const int reps = int(std::max<size_t>(3, std::min<size_t>(200, (size_t(1) << 30) / bytes)));
    using falcon::bench::read_bandwidth;
    const double one = read_bandwidth(bytes, 1, reps), one_best = falcon::bench::best_read_bandwidth(bytes, 1, reps);
    std::printf("%8zu %10.1f %10.1f   %*s", m, one / 1e9, one_best / 1e9, 10, "");
    double best = 0;
    for (int s : {1, 2, 4, 8}) {
      for (size_t piece : {size_t(256), size_t(4096)}) {
        const double bw = read_bandwidth(bytes, all, reps, s, piece);
        best = std::max(best, bw);
        std::printf(" %6.1f", bw / 1e9);
      }
    }
    std::printf(" %8.1f\n", best / 1e9);
  }
  return 0;
}
