#include "core/error.h"
#include "ops/argmax.h"

namespace falcon::ops::cpu {

void argmax(const Tensor& x, Tensor& out) {
  if (x.dtype() != DType::F32) throw Unsupported("argmax (cpu): only F32");
  const int64_t R = x.dim(0), N = x.dim(1);
  for (int64_t r = 0; r < R; ++r) {
    const float* row = x.data<float>() + r * N;
    int64_t best = 0;
    float best_v = row[0];
    for (int64_t j = 1; j < N; ++j) {
      // `!(best_v >= row[j])` would let NaN win; strict > keeps the first maximum.
      if (row[j] > best_v || (best_v != best_v && row[j] == row[j])) {
        best_v = row[j];
        best = j;
      }
    }
    out.data<int32_t>()[r] = int32_t(best);
  }
}

}  // namespace falcon::ops::cpu
