// Device memory for the CUDA backend: plain cudaMalloc, errors turned into typed exceptions.
#include <cuda_runtime.h>

#include <string>

#include "core/error.h"
#include "core/memory.h"

namespace falcon::cuda_memory {

std::shared_ptr<void> allocate(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) return std::shared_ptr<void>();
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so the process stays usable
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw OutOfMemory("out of GPU memory allocating " + std::to_string(bytes >> 20) + " MiB (" +
                      std::to_string(free_b >> 20) + " MiB free of " + std::to_string(total_b >> 20) +
                      " MiB): " + cudaGetErrorString(err));
  }
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
