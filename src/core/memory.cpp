#include "core/memory.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"

namespace falcon {

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device device_from_name(std::string_view name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda" || name == "gpu") return Device::CUDA;
  throw InvalidArgument("unknown device '" + std::string(name) + "' (expected cpu or cuda)");
}

bool device_available(Device d) {
  if (d == Device::CPU) return true;
#ifdef FALCON_HAS_CUDA
  return cuda_memory::available();
#else
  return false;
#endif
}

static void require_cuda_build() {
#ifndef FALCON_HAS_CUDA
  throw Unsupported("this build has no CUDA backend (configure with -DFALCON_CUDA=ON)");
#endif
}

std::shared_ptr<void> allocate_bytes(Device device, size_t bytes) {
  if (device == Device::CUDA) {
    require_cuda_build();
#ifdef FALCON_HAS_CUDA
    return cuda_memory::allocate(bytes);
#endif
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = rounded ? std::aligned_alloc(64, rounded) : nullptr;
  if (rounded && !p) throw OutOfMemory("out of host memory allocating " + std::to_string(bytes) + " bytes");
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device == Device::CPU && src_device == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
  require_cuda_build();
#ifdef FALCON_HAS_CUDA
  cuda_memory::copy(dst, dst_device == Device::CUDA, src, src_device == Device::CUDA, bytes);
#endif
}

void zero_bytes(void* dst, Device device, size_t bytes) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    std::memset(dst, 0, bytes);
    return;
  }
  require_cuda_build();
#ifdef FALCON_HAS_CUDA
  cuda_memory::zero(dst, bytes);
#endif
}

}  // namespace falcon
