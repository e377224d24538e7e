// Per-op wall time on the GPU, for finding where a request's time goes without a system
// profiler: with FALCON_OP_PROFILE=1 every CUDA op dispatch synchronises before and after its
// launch and adds the elapsed time to its op's total; the table (calls, ms, share) goes to
// stderr when the process exits. Off by default (one branch per dispatch). Graph captures
// are never timed (a capture must not synchronise), so run with FALCON_CUDA_GRAPHS=0 to see
// the decode step's ops. The synchronisation serialises host and GPU: totals are an upper
// bound on each op's GPU time and their sum exceeds the pipelined wall time.
#pragma once

namespace falcon::ops {

class OpProfileScope {
 public:
  // synchronize = false times host work only (the engine's per-step phases), and also
  // during a capture.
  explicit OpProfileScope(const char* op, bool synchronize = true);
  ~OpProfileScope();
  OpProfileScope(const OpProfileScope&) = delete;
  OpProfileScope& operator=(const OpProfileScope&) = delete;

 private:
  const char* op_ = nullptr;  // null when not timing this call
  long long start_ns_ = 0;
  bool sync_ = true;
};

// The totals so far as a table (empty when profiling is off); also printed at exit.
void print_op_profile();

}  // namespace falcon::ops
