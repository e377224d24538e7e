#include "ops/op_profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
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
    std::fprintf(stderr, "op profile (FALCON_OP_PROFILE; GPU ops synchronised, host phases not; totals overlap):\n%-52s %8s %11s %6s\n", "op", "calls",
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

void wait_for_device() {
#ifdef FALCON_HAS_CUDA
  cuda::synchronize();
#endif
}

bool can_time() {
#ifdef FALCON_HAS_CUDA
  return enabled() && !cuda::capturing();
#else
  return false;
#endif
}

}  // namespace

OpProfileScope::OpProfileScope(const char* op, bool synchronize) : sync_(synchronize) {
  if (synchronize ? !can_time() : !enabled()) return;
  totals();  // constructed before the first record so it outlives them at exit
  if (sync_) wait_for_device();
  op_ = op;
  start_ns_ = now_ns();
}

OpProfileScope::~OpProfileScope() {
  if (!op_) return;
  try {
    if (sync_) wait_for_device();
  } catch (...) {
    return;  // the op's own error is already on its way
  }
  const long long dt = now_ns() - start_ns_;
  Totals& t = totals();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& row = t.by_op[op_];
  row.first += 1;
  row.second += dt;
}

void print_op_profile() { totals().print(); }

}  // namespace falcon::ops
