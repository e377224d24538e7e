#include "ops/adaptive_avg_pool2d.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void adaptive_avg_pool2d(const Tensor& x, Tensor& out) {
  const Device d = common_device("adaptive_avg_pool2d", {&x, &out});
  check_rank("adaptive_avg_pool2d", "x", x, 3);
  check_rank("adaptive_avg_pool2d", "out", out, 3);
  check_dtype("adaptive_avg_pool2d", "x", x, DType::F32);
  check_dtype("adaptive_avg_pool2d", "out", out, DType::F32);
  if (out.dim(0) != x.dim(0) || out.dim(1) < 1 || out.dim(2) < 1 || out.dim(1) > x.dim(1) ||
      out.dim(2) > x.dim(2)) {
    throw InvalidArgument("adaptive_avg_pool2d: cannot pool " + x.describe() + " to " +
                          out.describe());
  }
  if (d == Device::CPU) {
    cpu::adaptive_avg_pool2d(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::adaptive_avg_pool2d(x, out));
  }
}

}  // namespace falcon::ops
