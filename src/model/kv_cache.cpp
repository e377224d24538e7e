#include "model/kv_cache.h"

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

}  // namespace falcon
