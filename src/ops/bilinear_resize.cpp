#include "ops/bilinear_resize.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void bilinear_resize(const Tensor& x, Tensor& out) {
  const Device d = common_device("bilinear_resize", {&x, &out});
  check_rank("bilinear_resize", "x", x, 3);
  check_rank("bilinear_resize", "out", out, 3);
  check_dtype("bilinear_resize", "x", x, DType::F32);
  check_dtype("bilinear_resize", "out", out, DType::F32);
  if (out.dim(0) != x.dim(0) || x.dim(1) < 1 || x.dim(2) < 1) {
    throw InvalidArgument("bilinear_resize: cannot resize " + x.describe() + " to " +
                          out.describe());
  }
  if (d == Device::CPU) {
    cpu::bilinear_resize(x, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::bilinear_resize(x, out));
  }
}

}  // namespace falcon::ops
