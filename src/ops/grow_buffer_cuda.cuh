// Grow-only device buffers for small temporaries (the segmentation kernels' tile summaries and
// partial sums, the two-kernel decode attention's q and slots, the expanded-weight chunk of
// linear_cuda.cu), one per (purpose, device). A buffer is reallocated (cudaMalloc and
// cudaFree, which synchronise) only when a call needs more than any call before, so steady-state
// calls neither allocate nor wait; calls on one stream reuse it in order. Included only by
// src/ops/*_cuda.cu.
#pragma once

#include <cstddef>
#include <mutex>

#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

enum class GrowBuffer : int { ConvMoments, ConvSplitK, ChannelMoments, UnificationStats, RopeTables, DecodeInputStage,
                             ExpandedWeight, DecodeLayers, DecodeLayersSync,
                             Count };

// zeroed: a new allocation is set to zero (synchronously: counters that kernels leave at zero).
inline void* grow_buffer(GrowBuffer which, size_t bytes, bool zeroed = false) {
  constexpr int kMaxDevices = 64;
  constexpr int kKinds = int(GrowBuffer::Count);
  static std::mutex mu;
  static void* buffers[kMaxDevices][kKinds] = {};
  static size_t capacity[kMaxDevices][kKinds] = {};
  int dev = 0;
  FALCON_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= kMaxDevices) throw Unsupported("CUDA device index above 63");
  const std::lock_guard<std::mutex> lock(mu);
  void*& buf = buffers[dev][int(which)];
  size_t& cap = capacity[dev][int(which)];
  if (bytes > cap) {
    if (buf) FALCON_CUDA_CHECK(cudaFree(buf));
    buf = nullptr;
    cap = 0;
    FALCON_CUDA_CHECK(cudaMalloc(&buf, bytes));
    cap = bytes;
    if (zeroed) FALCON_CUDA_CHECK(cudaMemset(buf, 0, bytes));
  }
  return buf;
}

}  // namespace falcon::ops::cuda
