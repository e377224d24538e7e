// Raw memory per device. CPU memory is 64-byte aligned (one cache line, one AVX-512 vector).
#pragma once

#include <cstddef>
#include <memory>

#include "core/device.h"

namespace falcon {

// Returns an owning pointer whose deleter frees on the right device.
// Throws OutOfMemory when the allocation fails.
std::shared_ptr<void> allocate_bytes(Device device, size_t bytes);

// Copies bytes between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

// Sets bytes to zero on the device.
void zero_bytes(void* dst, Device device, size_t bytes);

namespace cuda_memory {
// Implemented in memory_cuda.cu when the CUDA backend is built.
std::shared_ptr<void> allocate(size_t bytes);
void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes);
void zero(void* dst, size_t bytes);
bool available();
}  // namespace cuda_memory

}  // namespace falcon
