// Paged KV cache on CUDA: a scatter kernel for the writes, and the decode kernel of
// attention_split.cuh (other head_dims: its split kernel) reading keys through the block
// table. The grid depends only on the table's shape (B, max_blocks), never on the lengths, so a
// captured graph replays at any length.
#include <cmath>

#include "ops/attention_split.cuh"
#include "ops/cuda_common.cuh"
#include "ops/paged_attention.h"

namespace falcon::ops::cuda {

namespace {

// One block per row n: copies k[n] and v[n] to their slot, 16 bytes at a time where aligned.
template <typename T, int V>
__global__ void kv_write_kernel(const T* k, const T* v, const int32_t* slots, T* k_cache, T* v_cache, int k_row,
                                int v_row, int64_t capacity) {
  const int64_t n = blockIdx.x;
  const int64_t slot = slots[n];
  if (slot < 0 || slot >= capacity) return;
  using P = Pack<T, V>;
  const P* ks = reinterpret_cast<const P*>(k + n * k_row);
  const P* vs = reinterpret_cast<const P*>(v + n * v_row);
  P* kd = reinterpret_cast<P*>(k_cache + slot * k_row);
  P* vd = reinterpret_cast<P*>(v_cache + slot * v_row);
  for (int i = threadIdx.x; i < k_row / V; i += blockDim.x) kd[i] = ks[i];
  for (int i = threadIdx.x; i < v_row / V; i += blockDim.x) vd[i] = vs[i];
}

}  // namespace

void paged_kv_write(const Tensor& k, const Tensor& v, const Tensor& slots, Tensor& k_cache, Tensor& v_cache) {
  const int64_t N = slots.dim(0);
  if (N == 0) return;
  const int k_row = int(k_cache.dim(2) * k_cache.dim(3)), v_row = int(v_cache.dim(2) * v_cache.dim(3));
  const int64_t capacity = k_cache.dim(0) * k_cache.dim(1);
  dispatch_float(k.dtype(), "paged_kv_write", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr int V = 16 / sizeof(T);
    const bool vec = k_row % V == 0 && v_row % V == 0 && aligned_to(k.raw(), 16) && aligned_to(v.raw(), 16) &&
                     aligned_to(k_cache.raw(), 16) && aligned_to(v_cache.raw(), 16);
    if (vec) {
      kv_write_kernel<T, V><<<unsigned(N), 128, 0, stream()>>>(k.data<T>(), v.data<T>(), slots.data<int32_t>(),
                                                               k_cache.data<T>(), v_cache.data<T>(), k_row, v_row,
                                                               capacity);
    } else {
      kv_write_kernel<T, 1><<<unsigned(N), 128, 0, stream()>>>(k.data<T>(), v.data<T>(), slots.data<int32_t>(),
                                                               k_cache.data<T>(), v_cache.data<T>(), k_row, v_row,
                                                               capacity);
    }
    FALCON_CUDA_CHECK_LAUNCH("kv_write_kernel");
  });
}

void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const Tensor& sinks, Tensor& out) {
  const int64_t B = q.dim(0), H = q.dim(1), hd = q.dim(2);
  if (B == 0 || H == 0 || hd == 0) return;
  const int64_t bs = k_cache.dim(1), max_blocks = block_table.dim(1);
  if (int64_t(max_blocks) * bs > int64_t(INT32_MAX)) throw Unsupported("paged_attention (cuda): table too large");
  dispatch_float(q.dtype(), "paged_attention", [&](auto tag) {
    using T_ = typename decltype(tag)::type;
    attn::SplitParams<T_> p{};
    p.q = q.data<T_>();
    p.k = k_cache.data<T_>();
    p.v = v_cache.data<T_>();
    p.out = out.data<T_>();
    p.sinks = sinks.data<float>();
    p.rows = int(B);
    p.H = int(H);
    p.K = int(v_cache.dim(2));
    p.hd = int(hd);
    p.scale_log2 = float(1.4426950408889634 / std::sqrt(double(hd)));
    const attn::PagedKeys keys =
        attn::paged_keys(block_table.data<int32_t>(), seq_lens.data<int32_t>(), max_blocks, bs, k_cache.dim(0));
    attn::run_split_attention(p, keys, 1, max_blocks * bs);
  });
}

}  // namespace falcon::ops::cuda
