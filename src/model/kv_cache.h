// The keys and values of one sequence, per layer, as the forward pass writes them.
// Keys are stored expanded to all H query heads because the golden RoPE rotates each
// query head's copy of a kv head differently; values keep the K kv heads.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace falcon {

class KvCache {
 public:
  KvCache() = default;
  // Room for `capacity` tokens: keys [capacity, H, hd], values [capacity, K, hd] per layer.
  KvCache(int n_layers, int64_t capacity, int n_heads, int n_kv_heads, int head_dim, DType dtype, Device device);

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }    // tokens written so far
  void set_length(int64_t n);

  Tensor& keys(int layer) { return k_[size_t(layer)]; }
  Tensor& values(int layer) { return v_[size_t(layer)]; }

  // Rows [begin, begin + n) of `packed` as a cache of capacity n (sharing its memory): one
  // sequence's part of a packed prefill's cache.
  static KvCache rows_of(KvCache& packed, int64_t begin, int64_t n);
  // Copies the first n tokens of `src` (same geometry) into this cache; sets length to n.
  void copy_prefix_from(const KvCache& src, int64_t n);
  size_t bytes() const;

 private:
  std::vector<Tensor> k_, v_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
};

// The paged KV cache of the decode batch (ops/paged_attention.h): one pool of fixed-size
// blocks per layer, shared by all sequences; a sequence owns a list of block ids and hands
// them back when it finishes. The pool grows (doubling, contents copied) when it runs out of
// blocks; generation() changes then, so CUDA graphs holding its addresses are re-captured.
class KvPool {
 public:
  KvPool(int n_layers, int64_t num_blocks, int block_size, int n_heads, int n_kv_heads, int head_dim, DType dtype,
         Device device);

  int block_size() const { return block_size_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t free_blocks() const { return int64_t(free_.size()); }
  uint64_t generation() const { return generation_; }
  Tensor& keys(int layer) { return k_[size_t(layer)]; }    // [num_blocks, block_size, H, hd]
  Tensor& values(int layer) { return v_[size_t(layer)]; }  // [num_blocks, block_size, K, hd]

  // Appends blocks to `blocks` until it holds `tokens` tokens; grows the pool when needed
  // (throws OutOfMemory when the device cannot hold the larger pool; the pool is unchanged).
  void reserve(std::vector<int32_t>& blocks, int64_t tokens);
  void release(std::vector<int32_t>& blocks);
  size_t bytes() const;

 private:
  void grow(int64_t num_blocks);

  std::vector<Tensor> k_, v_;
  std::vector<int32_t> free_;
  int64_t num_blocks_ = 0;
  int block_size_ = 16;
  uint64_t generation_ = 0;
};

}  // namespace falcon
