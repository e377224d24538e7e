// Grow-only device buffers for small temporaries (the segmentation kernels' tile summaries and
// partial sums, the two-kernel decode attention's q and slots, the expanded-weight chunk of
// linear_cuda.cu, the fused feed-forward's partial sums), one per (purpose, device). A buffer is
// reallocated (cudaMalloc, which synchronises) only when a call needs more than any call before,
// so steady-state calls neither allocate nor wait; calls on one stream reuse it in order.
// A buffer that grows is retired, not freed: a CUDA graph captured earlier (a decode step of
// fewer rows) still holds its address and may be replayed. Capacities at least double, so the
// retired ones add up to less than the live one. Included only by src/ops/*_cuda.cu.
#pragma once

#include <cstddef>
#include <mutex>

#include "ops/cuda_common.cuh"

namespace falcon::ops::cuda {

enum class GrowBuffer : int { ConvMoments, ConvSplitK, ChannelMoments, UnificationStats, RopeTables, DecodeInputStage,
                             ExpandedWeight, DecodeLayers, DecodeLayersSync, FeedForwardPartials, FeedForwardSync,
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
    const size_t grown = bytes > 2 * cap ? bytes : 2 * cap;
    void* fresh = nullptr;
    FALCON_CUDA_CHECK(cudaMalloc(&fresh, grown));
    if (zeroed) FALCON_CUDA_CHECK(cudaMemset(fresh, 0, grown));
    buf = fresh;  // the old one stays allocated (see above)
    cap = grown;
  }
  return buf;
}

}  // namespace falcon::ops::cuda
