#include "kernel_timeline.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#ifdef FALCON_BENCH_CUPTI
#include <cupti.h>
#include <cxxabi.h>
#endif

namespace falcon::bench {

#ifdef FALCON_BENCH_CUPTI
namespace {

std::mutex g_mutex;
std::vector<KernelSpan> g_spans;
bool g_copies = false;
constexpr size_t kBufferBytes = size_t(4) << 20;
// Record buffers, touched once and reused: a fresh buffer's page faults (CUPTI fills what it
// is handed) landed inside the traced program, stalling it for milliseconds.
std::vector<uint8_t*> g_free_buffers;

uint8_t* new_buffer() {
  auto* b = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  if (!b) {
    std::fprintf(stderr, "out of memory for CUPTI's record buffers\n");
    std::exit(1);
  }
  std::memset(b, 0, kBufferBytes);
  return b;
}

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

std::string size_text(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", double(bytes) / double(1 << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f KB", double(bytes) / 1024.0);
  }
  return buf;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_free_buffers.empty()) {
      *buffer = g_free_buffers.back();
      g_free_buffers.pop_back();
    } else {
      *buffer = nullptr;
    }
  }
  if (!*buffer) *buffer = new_buffer();
  *size = kBufferBytes;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  CUpti_Activity* record = nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
      // Named later (stop()): demangling here, inside CUPTI's flush, stalls the traced program.
      g_spans.push_back({k->name, k->start, k->end, k->gridX, k->gridY, k->gridZ});
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
      const char* kind = m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_HTOD   ? "HtoD"
                         : m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_DTOH ? "DtoH"
                         : m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_DTOD ? "DtoD"
                                                                          : "other";
      g_spans.push_back({"memcpy " + std::string(kind) + " " + size_text(m->bytes), m->start, m->end, 0, 0, 0});
    } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
      g_spans.push_back({"memset " + size_text(m->bytes), m->start, m->end, 0, 0, 0});
    }
  }
  g_free_buffers.push_back(buffer);  // under g_mutex
}

}  // namespace

bool KernelTimeline::available() {
  return true;
}

void KernelTimeline::start(bool copies) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_spans.clear();
    g_copies = copies;
  }
  static std::once_flag once;
  std::call_once(once, [] {
    for (int i = 0; i < 16; ++i) g_free_buffers.push_back(new_buffer());  // 64 MB, faulted in now
    check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "CUPTI callbacks");
  });
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "CUPTI enable");
  if (copies) {
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "CUPTI enable copies");
    check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "CUPTI enable sets");
  }
}

uint64_t KernelTimeline::now_ns() {
  uint64_t t = 0;
  check(cuptiGetTimestamp(&t), "CUPTI timestamp");
  return t;
}

std::vector<KernelSpan> KernelTimeline::stop() {
  check(cuptiActivityFlushAll(1), "CUPTI flush");
  check(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "CUPTI disable");
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_copies) {
    check(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMCPY), "CUPTI disable copies");
    check(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_MEMSET), "CUPTI disable sets");
  }
  std::vector<KernelSpan> out = std::move(g_spans);
  g_spans.clear();
  std::map<std::string, std::string> names;  // mangled -> short, each demangled once
  for (KernelSpan& k : out) {
    if (k.name.rfind("memcpy ", 0) == 0 || k.name.rfind("memset ", 0) == 0) continue;
    auto it = names.find(k.name);
    if (it == names.end()) it = names.emplace(k.name, short_name(k.name.c_str())).first;
    k.name = it->second;
  }
  std::sort(out.begin(), out.end(),
            [](const KernelSpan& a, const KernelSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

#else

bool KernelTimeline::available() {
  return false;
}
void KernelTimeline::start(bool) {}
uint64_t KernelTimeline::now_ns() {
  return 0;
}
std::vector<KernelSpan> KernelTimeline::stop() {
  return {};
}

#endif

}  // namespace falcon::bench
