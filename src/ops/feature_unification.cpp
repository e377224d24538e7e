#include "ops/feature_unification.h"

#include "ops/dispatch.h"

namespace falcon::ops {

void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out) {
  const Device d = common_device("feature_unification", {&x, &basis, &out});
  check_rank("feature_unification", "x", x, 3);
  check_rank("feature_unification", "basis", basis, 4);
  check_dtype("feature_unification", "x", x, DType::F32);
  check_dtype("feature_unification", "basis", basis, DType::F32);
  check_dtype("feature_unification", "out", out, DType::F32);
  const int64_t o = basis.dim(0), k = basis.dim(2);
  if (basis.dim(1) != 1 || basis.dim(3) != k || k % 2 != 1) {
    throw InvalidArgument("feature_unification: basis " + basis.describe() +
                          " must be [O, 1, k, k] with k odd");
  }
  check_shape("feature_unification", "out", out, {o, x.dim(1), x.dim(2)});
  if (d == Device::CPU) {
    cpu::feature_unification(x, basis, out);
  } else {
    FALCON_CUDA_DISPATCH(cuda::feature_unification(x, basis, out));
  }
}

}  // namespace falcon::ops
