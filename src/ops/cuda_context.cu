// Per-device CUDA context: the ops' stream, the cuBLASLt handle and workspace, scratch buffers.
#include <cstdlib>
#include <array>
#include <memory>
#include <mutex>
#include <string>

#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

void throw_cuda_error(cudaError_t err, const char* call) {
  // Clears a non-sticky error so later calls on this thread see a clean state; a sticky one
  // (an illegal address in a kernel) stays and every later call reports it.
  cudaGetLastError();
  const std::string msg = std::string(call) + ": " + cudaGetErrorString(err);
  if (err == cudaErrorMemoryAllocation) throw OutOfMemory("CUDA out of memory in " + msg);
  throw Error("CUDA error in " + msg);
}

namespace {

constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;  // what cuBLASLt asks for on Hopper
constexpr int kMaxDevices = 16;

struct Buffer {
  void* ptr = nullptr;
  size_t bytes = 0;
};

struct DeviceContext {
  int device = 0;
  cudaStream_t own_stream = nullptr;
  cudaStream_t current = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* lt_workspace = nullptr;
  int sms = 0;
  int cc = 0;
  std::array<Buffer, size_t(Scratch::Count)> scratch{};
};

std::mutex g_mutex;
// Contexts live until the process ends and are never destroyed: tearing down streams and
// handles from static destructors races the CUDA runtime's own shutdown.
std::array<DeviceContext*, kMaxDevices> g_contexts{};

DeviceContext& context() {
  int dev = 0;
  FALCON_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices) throw Unsupported("CUDA device index " + std::to_string(dev) + " too large");
  std::lock_guard<std::mutex> lock(g_mutex);
  DeviceContext*& ctx = g_contexts[size_t(dev)];
  if (!ctx) {
    auto c = std::make_unique<DeviceContext>();
    c->device = dev;
    FALCON_CUDA_CHECK(cudaStreamCreate(&c->own_stream));
    c->current = c->own_stream;
    FALCON_CUDA_CHECK(cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, dev));
    int major = 0, minor = 0;
    FALCON_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    FALCON_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    c->cc = major * 10 + minor;
    if (cublasLtCreate(&c->lt) != CUBLAS_STATUS_SUCCESS) throw Error("cublasLtCreate failed");
    FALCON_CUDA_CHECK(cudaMalloc(&c->lt_workspace, kLtWorkspaceBytes));
    ctx = c.release();
  }
  return *ctx;
}

}  // namespace

Stream stream() { return context().current; }

void set_stream(Stream s) {
  DeviceContext& c = context();
  c.current = s ? s : c.own_stream;
}

void synchronize() { FALCON_CUDA_CHECK(cudaStreamSynchronize(context().current)); }

bool capturing() {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  FALCON_CUDA_CHECK(cudaStreamIsCapturing(context().current, &st));
  return st != cudaStreamCaptureStatusNone;
}

bool pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("FALCON_CUDA_PDL");
    return compute_capability() >= 90 && !(e && std::string(e) == "0");
  }();
  return on;
}

EventTimer::EventTimer() {
  cudaEvent_t a = nullptr, b = nullptr;
  FALCON_CUDA_CHECK(cudaEventCreate(&a));
  FALCON_CUDA_CHECK(cudaEventCreate(&b));
  begin_ = a;
  end_ = b;
}

EventTimer::~EventTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(begin_));
  cudaEventDestroy(static_cast<cudaEvent_t>(end_));
}

void EventTimer::start() { FALCON_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(begin_), context().current)); }

double EventTimer::stop_ms() {
  FALCON_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(end_), context().current));
  FALCON_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(end_)));
  float ms = 0.f;
  FALCON_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(begin_), static_cast<cudaEvent_t>(end_)));
  return double(ms);
}

void* scratch(Scratch which, size_t bytes) {
  DeviceContext& c = context();
  Buffer& b = c.scratch[size_t(which)];
  if (bytes > b.bytes) {
    if (capturing()) throw InternalError("scratch buffer must grow during a CUDA graph capture: warm up first");
    // Round up so that slowly growing shapes do not reallocate every call.
    size_t want = bytes + bytes / 4;
    want = (want + 255) / 256 * 256;
    if (b.ptr) {
      // The old buffer may still be read by queued work: cudaFree waits for the device.
      FALCON_CUDA_CHECK(cudaFree(b.ptr));
      b.ptr = nullptr;
      b.bytes = 0;
    }
    FALCON_CUDA_CHECK(cudaMalloc(&b.ptr, want));
    b.bytes = want;
    FALCON_CUDA_CHECK(cudaMemsetAsync(b.ptr, 0, want, c.current));
  }
  return b.ptr;
}

int sm_count() { return context().sms; }
int compute_capability() { return context().cc; }

cublasLtHandle_t lt_handle() { return context().lt; }

void* lt_workspace(size_t* bytes) {
  *bytes = kLtWorkspaceBytes;
  return context().lt_workspace;
}

}  // namespace falcon::ops::cuda
