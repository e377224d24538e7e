#include "ops/argmax.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void argmax(const Tensor& x, Tensor& out) {
  const Device d = common_device("argmax", {&x, &out});
  check_rank("argmax", "x", x, 2);
  check_shape("argmax", "out", out, {x.dim(0)});
  check_dtype("argmax", "out", out, DType::I32);
  if (x.dim(1) == 0) throw InvalidArgument("argmax: empty rows");
  if (d == Device::CPU) {
    cpu::argmax(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::argmax(x, out));
  }
}

}  // namespace falcon::ops
