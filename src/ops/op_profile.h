// Per-op GPU time, for finding where a request's time goes without a system profiler: with
// FALCON_OP_PROFILE=1 every CUDA op dispatch waits for the device, then times its own launches
// with a pair of CUDA events and adds that to its op's total; the table (calls, ms, share)
// goes to stderr when the process exits. Off by default (one branch per dispatch). Graph
// captures are never timed (a capture must not synchronise), so run with FALCON_CUDA_GRAPHS=0
// to see the decode step's ops (a kernel's time is the same eager or replayed; the gaps
// between kernels are not counted). Host phases (synchronize = false) take wall time.
#pragma once

#include <string>

namespace falcon::ops {

class OpProfileScope {
 public:
  // synchronize = false times host work only (the engine's per-step phases), and also
  // during a capture.
  explicit OpProfileScope(const char* op, bool synchronize = true);
  explicit OpProfileScope(std::string op, bool synchronize = true);
  ~OpProfileScope();
  OpProfileScope(const OpProfileScope&) = delete;
  OpProfileScope& operator=(const OpProfileScope&) = delete;

 private:
  std::string op_;  // empty when not timing this call
  long long start_ns_ = 0;
  bool sync_ = true;
};

// True when FALCON_OP_PROFILE is set (to build detailed op names only then).
bool op_profile_enabled();

// The totals so far as a table (empty when profiling is off); also printed at exit.
void print_op_profile();

// Forgets the totals so far (a benchmark drops its warm-up run: first calls load kernels and
// plan products).
void reset_op_profile();

}  // namespace falcon::ops
