#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// out[s, :] = table[ids[s], :] converted to out's dtype.
// table: [V, D] F32/BF16/F16; ids: [S] I32 (each in [0, V)); out: [S, D].
// An id outside [0, V) is InvalidArgument. On a GPU that check reads the ids back and waits,
// unless `host_ids`, the same ids on the host ([S] I32, CPU), is given: it is checked instead.
void embedding(const Tensor& table, const Tensor& ids, Tensor& out, const Tensor* host_ids = nullptr);

namespace cpu {
void embedding(const Tensor& table, const Tensor& ids, Tensor& out);
}
namespace cuda {
void embedding(const Tensor& table, const Tensor& ids, Tensor& out, bool ids_checked);
}

}  // namespace falcon::ops
