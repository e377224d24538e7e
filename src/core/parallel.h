// CPU threading. OpenMP: field-standard, no pool to manage, and the pragmas compile away
// in builds without it (the browser build). One process-wide thread count.
#pragma once

#include <cstdint>
#include <functional>

namespace falcon {

// 0 = all hardware threads.
void set_num_threads(int n);
int num_threads();

// Calls fn(begin, end) on disjoint chunks covering [0, n), in parallel. Chunks hold at least
// `grain` items. Runs inline when n is small or when already inside a parallel region.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace falcon
