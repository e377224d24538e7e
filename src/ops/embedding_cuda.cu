// Token embedding gather on CUDA: one block per token row, converted to the output dtype.
#include <string>
#include <vector>

#include "ops/cuda_common.cuh"
#include "ops/embedding.h"

namespace falcon::ops::cuda {

namespace {

constexpr int kThreads = 128;

template <typename Tin, typename Tout, int V>
__global__ void embedding_kernel(const Tin* table, const int32_t* ids, Tout* out, int64_t vocab, int64_t dim) {
  const int64_t s = blockIdx.x;
  const int64_t id = ids[s];
  Tout* o = out + s * dim;
  // Ids were checked on the host before the launch, except inside a graph capture: a bad id
  // then yields a zero row rather than a read outside the table.
  const bool valid = id >= 0 && id < vocab;
  const Tin* src = table + (valid ? id : 0) * dim;
  for (int64_t j = int64_t(threadIdx.x) * V; j < dim; j += int64_t(blockDim.x) * V) {
    float v[V];
    load_f32<Tin, V>(src + j, v);
    if (!valid) {
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = 0.f;
    }
    store_f32<Tout, V>(o + j, v);
  }
}

// Device ids without a host copy: checked after one small copy and a wait, skipped while a
// graph is being captured.
void check_ids(const Tensor& ids, int64_t vocab) {
  if (capturing()) return;
  std::vector<int32_t> host(size_t(ids.numel()));
  FALCON_CUDA_CHECK(cudaMemcpyAsync(host.data(), ids.raw(), ids.nbytes(), cudaMemcpyDeviceToHost, stream()));
  synchronize();
  check_token_ids(host.data(), int64_t(host.size()), vocab);
}

}  // namespace

void embedding(const Tensor& table, const Tensor& ids, Tensor& out, bool ids_checked) {
  const int64_t S = ids.dim(0), V = table.dim(0), D = table.dim(1);
  if (S == 0 || D == 0) return;
  if (!ids_checked) check_ids(ids, V);
  dispatch_float(table.dtype(), "embedding", [&](auto in_tag) {
    using Tin = typename decltype(in_tag)::type;
    dispatch_float(out.dtype(), "embedding", [&](auto out_tag) {
      using Tout = typename decltype(out_tag)::type;
      if (D % 4 == 0 && aligned_to(table.raw(), 4 * sizeof(Tin)) && aligned_to(out.raw(), 4 * sizeof(Tout))) {
        embedding_kernel<Tin, Tout, 4>
            <<<unsigned(S), kThreads, 0, stream()>>>(table.data<Tin>(), ids.data<int32_t>(), out.data<Tout>(), V, D);
      } else {
        embedding_kernel<Tin, Tout, 1>
            <<<unsigned(S), kThreads, 0, stream()>>>(table.data<Tin>(), ids.data<int32_t>(), out.data<Tout>(), V, D);
      }
      FALCON_CUDA_CHECK_LAUNCH("embedding_kernel");
    });
  });
}

}  // namespace falcon::ops::cuda
