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
  if (host_ids) {
    if (!host_ids->on_cpu() || host_ids->dtype() != DType::I32 || host_ids->shape() != ids.shape()) {
      throw InvalidArgument("embedding: host_ids must be the ids' I32 copy on the CPU, got " + host_ids->describe());
    }
    const int64_t vocab = table.dim(0);
    for (int64_t i = 0; i < host_ids->numel(); ++i) {
      const int32_t id = host_ids->data<int32_t>()[i];
      if (id < 0 || id >= vocab) {
        throw InvalidArgument("embedding: token id " + std::to_string(id) + " outside the vocabulary of " +
                              std::to_string(vocab));
      }
    }
  }
  if (d == Device::CPU) {
    cpu::embedding(table, ids, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::embedding(table, ids, out, host_ids != nullptr));
  }
}

}  // namespace falcon::ops
