#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// out[s, :] = table[ids[s], :] converted to out's dtype.
// table: [V, D] F32/BF16/F16; ids: [S] I32 (each in [0, V)); out: [S, D].
void embedding(const Tensor& table, const Tensor& ids, Tensor& out);

namespace cpu {
void embedding(const Tensor& table, const Tensor& ids, Tensor& out);
}
namespace cuda {
void embedding(const Tensor& table, const Tensor& ids, Tensor& out);
}

}  // namespace falcon::ops
