// The keys and values of one sequence, per layer, as the forward pass writes them.
// Keys are stored expanded to all H query heads because the golden RoPE rotates each
// query head's copy of a kv head differently; values keep the K kv heads.
#pragma once

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

  // Copies the first n tokens of `src` (same geometry) into this cache; sets length to n.
  void copy_prefix_from(const KvCache& src, int64_t n);
  size_t bytes() const;

 private:
  std::vector<Tensor> k_, v_;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
};

}  // namespace falcon
