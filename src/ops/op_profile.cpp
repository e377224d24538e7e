#include "ops/op_profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#ifdef FALCON_HAS_CUDA
#include "ops/cuda_context.h"
#endif

namespace falcon::ops {
namespace {

struct Totals {
  std::mutex mu;
  std::map<std::string, std::pair<long long, long long>> by_op;  // op -> (calls, ns)
  ~Totals() { print(); }
  void print() {
    std::lock_guard<std::mutex> lock(mu);
    if (by_op.empty()) return;
    std::vector<std::pair<std::string, std::pair<long long, long long>>> rows(by_op.begin(), by_op.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.second > b.second.second; });
    long long total = 0;
    for (const auto& r : rows) total += r.second.second;
    std::fprintf(stderr, "op profile (FALCON_OP_PROFILE; GPU ops: CUDA-event time, one op at a time; host phases: wall time; totals overlap):\n%-52s %8s %11s %6s\n", "op", "calls",
                 "ms", "share");
    for (const auto& r : rows) {
      std::fprintf(stderr, "%-52s %8lld %11.3f %5.1f%%\n", r.first.c_str(), r.second.first, r.second.second / 1e6,
                   total ? 100.0 * double(r.second.second) / double(total) : 0.0);
    }
    std::fprintf(stderr, "%-52s %8s %11.3f\n", "total", "", total / 1e6);
  }
};

Totals& totals() {
  static Totals t;
  return t;
}

bool enabled() {
  static const bool on = [] {
    const char* e = std::getenv("FALCON_OP_PROFILE");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

long long now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#ifdef FALCON_HAS_CUDA
void wait_for_device() { cuda::synchronize(); }
#endif

bool can_time() {
#ifdef FALCON_HAS_CUDA
  return enabled() && !cuda::capturing();
#else
  return false;
#endif
}

}  // namespace

#ifdef FALCON_HAS_CUDA
namespace {
// One event pair per thread: GPU ops are timed by the GPU (the host clock would add the
// synchronisation's own ~15 us to every op).
cuda::EventTimer& event_timer() {
  thread_local cuda::EventTimer t;
  return t;
}
}  // namespace
#endif

OpProfileScope::OpProfileScope(const char* op, bool synchronize) : OpProfileScope(std::string(), synchronize) {
  if (start_ns_) op_ = op;
}

// GPU scopes in flight on this thread: an op dispatched inside another's scope (linear inside
// its profiled-by-shape scope) is counted once, by the outer one.
thread_local int gpu_scopes = 0;

OpProfileScope::OpProfileScope(std::string op, bool synchronize) : sync_(synchronize) {
  if (synchronize ? !can_time() || gpu_scopes > 0 : !enabled()) return;
  if (sync_) ++gpu_scopes;
  totals();  // constructed before the first record so it outlives them at exit
#ifdef FALCON_HAS_CUDA
  if (sync_) {
    wait_for_device();
    event_timer().start();
  }
#endif
  op_ = std::move(op);
  start_ns_ = now_ns();
}

OpProfileScope::~OpProfileScope() {
  if (!start_ns_) return;
  if (sync_) --gpu_scopes;
  long long dt = now_ns() - start_ns_;
#ifdef FALCON_HAS_CUDA
  if (sync_) {
    try {
      dt = static_cast<long long>(event_timer().stop_ms() * 1e6);
    } catch (...) {
      return;  // the op's own error is already on its way
    }
  }
#endif
  Totals& t = totals();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& row = t.by_op[op_];
  row.first += 1;
  row.second += dt;
}

void print_op_profile() { totals().print(); }

void reset_op_profile() {
  Totals& t = totals();
  std::lock_guard<std::mutex> lock(t.mu);
  t.by_op.clear();
}

bool op_profile_enabled() { return enabled(); }

}  // namespace falcon::ops
