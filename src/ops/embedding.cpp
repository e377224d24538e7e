#include "ops/embedding.h"

#include <string>

#include "ops/dispatch.h"

namespace falcon::ops {

void embedding(const Tensor& table, const Tensor& ids, Tensor& out, const Tensor* host_ids) {
  const Device d = common_device("embedding", {&table, &ids, &out});
  check_rank("embedding", "table", table, 2);
  check_rank("embedding", "ids", ids, 1);
  check_dtype("embedding", "ids", ids, DType::I32);
  check_shape("embedding", "out", out, {ids.dim(0), table.dim(1)});
  if (!is_float(table.dtype()) || !is_float(out.dtype())) {
    throw InvalidArgument("embedding: table and out must be float tensors");
  }
  if (host_ids && (!host_ids->on_cpu() || host_ids->dtype() != DType::I32 || host_ids->shape() != ids.shape())) {
    throw InvalidArgument("embedding: host_ids must be the ids' I32 copy on the CPU, got " + host_ids->describe());
  }
  // Ids on the host are checked here; device ids without a host copy by their backend.
  const Tensor* host = host_ids ? host_ids : d == Device::CPU ? &ids : nullptr;
  if (host) check_token_ids(host->data<int32_t>(), host->numel(), table.dim(0));
  if (d == Device::CPU) {
    cpu::embedding(table, ids, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::embedding(table, ids, out, host != nullptr));
  }
}

void check_token_ids(const int32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      throw InvalidArgument("embedding: token id " + std::to_string(ids[i]) + " outside the vocabulary of " +
                            std::to_string(vocab));
    }
  }
}

}  // namespace falcon::ops
