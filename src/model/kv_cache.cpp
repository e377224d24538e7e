#include "model/kv_cache.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/memory.h"

namespace falcon {

KvCache::KvCache(int n_layers, int64_t capacity, int n_heads, int n_kv_heads, int head_dim, DType dtype,
                 Device device)
    : capacity_(capacity) {
  for (int l = 0; l < n_layers; ++l) {
    k_.push_back(Tensor::empty({capacity, n_heads, head_dim}, dtype, device));
    v_.push_back(Tensor::empty({capacity, n_kv_heads, head_dim}, dtype, device));
  }
}

KvCache KvCache::rows_of(KvCache& packed, int64_t begin, int64_t n) {
  if (begin < 0 || n < 0 || begin + n > packed.capacity_) throw InternalError("KV cache view outside its cache");
  KvCache c;
  for (size_t l = 0; l < packed.k_.size(); ++l) {
    c.k_.push_back(packed.k_[l].rows(begin, begin + n));
    c.v_.push_back(packed.v_[l].rows(begin, begin + n));
  }
  c.capacity_ = n;
  c.length_ = std::clamp<int64_t>(packed.length_ - begin, 0, n);
  return c;
}

void KvCache::set_length(int64_t n) {
  if (n < 0 || n > capacity_) {
    throw InternalError("KV cache length " + std::to_string(n) + " outside capacity " + std::to_string(capacity_));
  }
  length_ = n;
}

void KvCache::copy_prefix_from(const KvCache& src, int64_t n) {
  if (src.k_.size() != k_.size() || n > src.length_ || n > capacity_) {
    throw InternalError("KV cache prefix copy: incompatible caches");
  }
  for (size_t l = 0; l < k_.size(); ++l) {
    Tensor dk = k_[l].rows(0, n), dv = v_[l].rows(0, n);
    dk.copy_from(src.k_[l].rows(0, n));
    dv.copy_from(src.v_[l].rows(0, n));
  }
  length_ = n;
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (size_t l = 0; l < k_.size(); ++l) b += k_[l].nbytes() + v_[l].nbytes();
  return b;
}

KvPool::KvPool(int n_layers, int64_t num_blocks, int block_size, int n_heads, int n_kv_heads, int head_dim,
               DType dtype, Device device)
    : block_size_(block_size) {
  if (block_size <= 0 || num_blocks <= 0) throw InternalError("KV pool: empty geometry");
  for (int l = 0; l < n_layers; ++l) {
    k_.push_back(Tensor::empty({num_blocks, block_size, n_heads, head_dim}, dtype, device));
    v_.push_back(Tensor::empty({num_blocks, block_size, n_kv_heads, head_dim}, dtype, device));
  }
  num_blocks_ = num_blocks;
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(int32_t(b));
}

void KvPool::grow(int64_t num_blocks) {
  if (num_blocks > INT32_MAX / block_size_) throw OutOfMemory("KV pool: too many blocks");
  std::vector<Tensor> nk, nv;  // allocate everything first: on failure the pool is unchanged
  for (size_t l = 0; l < k_.size(); ++l) {
    Shape ks = k_[l].shape(), vs = v_[l].shape();
    ks[0] = num_blocks;
    vs[0] = num_blocks;
    nk.push_back(Tensor::empty(ks, k_[l].dtype(), k_[l].device()));
    nv.push_back(Tensor::empty(vs, v_[l].dtype(), v_[l].device()));
  }
  for (size_t l = 0; l < k_.size(); ++l) {
    Tensor dk = nk[l].rows(0, num_blocks_), dv = nv[l].rows(0, num_blocks_);
    dk.copy_from(k_[l]);
    dv.copy_from(v_[l]);
  }
  k_ = std::move(nk);
  v_ = std::move(nv);
  for (int64_t b = num_blocks - 1; b >= num_blocks_; --b) free_.push_back(int32_t(b));
  num_blocks_ = num_blocks;
  ++generation_;
}

void KvPool::reserve(std::vector<int32_t>& blocks, int64_t tokens) {
  const int64_t need = (tokens + block_size_ - 1) / block_size_ - int64_t(blocks.size());
  if (need <= 0) return;
  if (need > free_blocks()) grow(std::max(num_blocks_ * 2, num_blocks_ + need - free_blocks()));
  for (int64_t i = 0; i < need; ++i) {
    blocks.push_back(free_.back());
    free_.pop_back();
  }
}

void KvPool::release(std::vector<int32_t>& blocks) {
  free_.insert(free_.end(), blocks.rbegin(), blocks.rend());
  blocks.clear();
}

size_t KvPool::bytes() const {
  size_t b = 0;
  for (size_t l = 0; l < k_.size(); ++l) b += k_[l].nbytes() + v_[l].nbytes();
  return b;
}

}  // namespace falcon
