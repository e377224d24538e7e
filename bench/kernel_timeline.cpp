#include "kernel_timeline.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#ifdef FALCON_BENCH_CUPTI
#include <cupti.h>
#include <cxxabi.h>
#endif

namespace falcon::bench {

#ifdef FALCON_BENCH_CUPTI
namespace {

std::mutex g_mutex;
std::vector<KernelSpan> g_spans;
constexpr size_t kBufferBytes = size_t(8) << 20;

void check(CUptiResult r, const char* what) {
  if (r != CUPTI_SUCCESS) {
    const char* msg = nullptr;
    cuptiGetResultString(r, &msg);
    std::fprintf(stderr, "%s: %s\n", what, msg ? msg : "CUPTI error");
    std::exit(1);
  }
}

// "void falcon::ops::cuda::(anonymous namespace)::fused_gemv_kernel<...>(...)" ->
// "fused_gemv_kernel".
std::string short_name(const char* mangled) {
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : mangled;
  std::free(d);
  for (size_t at; (at = s.find("(anonymous namespace)")) != std::string::npos;) s.erase(at, 21);
  size_t end = s.find_first_of("<(");
  if (end == std::string::npos) end = s.size();
  size_t begin = s.rfind("::", end);
  begin = begin == std::string::npos ? 0 : begin + 2;
  const size_t space = s.rfind(' ', end);
  if (space != std::string::npos && space + 1 > begin) begin = space + 1;
  return s.substr(begin, end - begin);
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    g_spans.push_back({short_name(k->name), k->start, k->end, k->gridX, k->gridY, k->gridZ});
  }
  std::free(buffer);
}

}  // namespace

bool KernelTimeline::available() {
  return true;
}

void KernelTimeline::start() {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_spans.clear();
  }
  static std::once_flag once;
  std::call_once(once, [] {
    check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "CUPTI callbacks");
  });
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "CUPTI enable");
}

std::vector<KernelSpan> KernelTimeline::stop() {
  check(cuptiActivityFlushAll(1), "CUPTI flush");
  check(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "CUPTI disable");
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<KernelSpan> out = std::move(g_spans);
  g_spans.clear();
  std::sort(out.begin(), out.end(),
            [](const KernelSpan& a, const KernelSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

#else

bool KernelTimeline::available() {
  return false;
}
void KernelTimeline::start() {}
std::vector<KernelSpan> KernelTimeline::stop() {
  return {};
}

#endif

}  // namespace falcon::bench
