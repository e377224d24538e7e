#include "ops/grid_rope.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void grid_rope(const Tensor& x, const Tensor& freqs, Tensor& out) {
  const Device d = common_device("grid_rope", {&x, &freqs, &out});
  check_rank("grid_rope", "x", x, 3);
  check_dtype("grid_rope", "x", x, DType::F32);
  check_dtype("grid_rope", "out", out, DType::F32);
  check_dtype("grid_rope", "freqs", freqs, DType::F32);
  check_shape("grid_rope", "out", out, x.shape());
  check_shape("grid_rope", "freqs", freqs, {2, x.dim(0)});
  if (x.dim(0) % 2 != 0) throw InvalidArgument("grid_rope: odd channel count in " + x.describe());
  if (d == Device::CPU) {
    cpu::grid_rope(x, freqs, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::grid_rope(x, freqs, out));
  }
}

}  // namespace falcon::ops
