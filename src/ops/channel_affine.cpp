#include "ops/channel_affine.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, Tensor& out,
                    bool silu) {
  const Device d = common_device("channel_affine", {&x, &scale, &shift, &out});
  if (x.rank() < 1 || x.shape() != out.shape()) {
    throw InvalidArgument("channel_affine: x " + x.describe() + " and out " + out.describe() +
                          " must match");
  }
  check_dtype("channel_affine", "x", x, DType::F32);
  check_dtype("channel_affine", "out", out, DType::F32);
  check_shape("channel_affine", "scale", scale, {x.dim(0)});
  check_shape("channel_affine", "shift", shift, {x.dim(0)});
  check_dtype("channel_affine", "scale", scale, DType::F32);
  check_dtype("channel_affine", "shift", shift, DType::F32);
  if (d == Device::CPU) {
    cpu::channel_affine(x, scale, shift, out, silu);
  } else {
    FALCON_CUDA_DISPATCH(cuda::channel_affine(x, scale, shift, out, silu));
  }
}

}  // namespace falcon::ops
