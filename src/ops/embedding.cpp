#include "ops/embedding.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  const Device d = common_device("embedding", {&table, &ids, &out});
  check_rank("embedding", "table", table, 2);
  check_rank("embedding", "ids", ids, 1);
  check_dtype("embedding", "ids", ids, DType::I32);
  check_shape("embedding", "out", out, {ids.dim(0), table.dim(1)});
  if (!is_float(table.dtype()) || !is_float(out.dtype())) {
    throw InvalidArgument("embedding: table and out must be float tensors");
  }
  if (d == Device::CPU) {
    cpu::embedding(table, ids, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::embedding(table, ids, out));
  }
}

}  // namespace falcon::ops
