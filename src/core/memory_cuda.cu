// Device memory for the CUDA backend: a stream-ordered pool, errors turned into typed exceptions.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/memory.h"

namespace falcon::cuda_memory {

namespace {

// Device memory comes from the device's stream-ordered pool (cudaMallocAsync) on the legacy
// default stream, which every op stream (blocking streams) is ordered with. cudaFree waits for
// the whole device, and a fresh cudaMalloc of a request's large temporaries (AnyUp's
// full-resolution maps are 512 MB each) costs milliseconds; the pool keeps freed memory for
// the next request instead (release threshold: never). FALCON_CUDA_ASYNC_ALLOC=0 goes back to
// plain cudaMalloc/cudaFree.
bool use_pool() {
  static const bool on = [] {
    const char* e = std::getenv("FALCON_CUDA_ASYNC_ALLOC");
    if (e && std::string(e) == "0") return false;
    int device = 0, supported = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess || !supported) {
      cudaGetLastError();
      return false;
    }
    cudaMemPool_t pool = nullptr;
    if (cudaDeviceGetDefaultMemPool(&pool, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    uint64_t keep = UINT64_MAX;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
    return true;
  }();
  return on;
}

// Gives the pool's cached memory back to the device (before reporting out of memory).
void trim_pool() {
  int device = 0;
  cudaMemPool_t pool = nullptr;
  if (cudaGetDevice(&device) == cudaSuccess && cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    cudaDeviceSynchronize();
    cudaMemPoolTrimTo(pool, 0);
  }
  cudaGetLastError();
}

}  // namespace

std::shared_ptr<void> allocate(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) return std::shared_ptr<void>();
  const bool pooled = use_pool();
  cudaError_t err = pooled ? cudaMallocAsync(&p, bytes, cudaStreamLegacy) : cudaMalloc(&p, bytes);
  if (err != cudaSuccess && pooled) {
    cudaGetLastError();
    trim_pool();  // memory cached for other sizes may be what this one needs
    err = cudaMallocAsync(&p, bytes, cudaStreamLegacy);
  }
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so the process stays usable
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw OutOfMemory("out of GPU memory allocating " + std::to_string(bytes >> 20) + " MiB (" +
                      std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) +
                      " MiB): " + cudaGetErrorString(err));
  }
  if (pooled) return std::shared_ptr<void>(p, [](void* q) { cudaFreeAsync(q, cudaStreamLegacy); });
  return std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
}

void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  cudaError_t err = cudaMemcpy(dst, src, bytes, kind);
  if (err != cudaSuccess) throw Error(std::string("cudaMemcpy failed: ") + cudaGetErrorString(err));
}

void zero(void* dst, size_t bytes) {
  cudaError_t err = cudaMemset(dst, 0, bytes);
  if (err != cudaSuccess) throw Error(std::string("cudaMemset failed: ") + cudaGetErrorString(err));
}

bool available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}

}  // namespace falcon::cuda_memory
