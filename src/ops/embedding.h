#pragma once

#include "core/tensor.h"

namespace falcon::ops {

// out[s, :] = table[ids[s], :] converted to out's dtype.
// table: [V, D] F32/BF16/F16; ids: [S] I32 (each in [0, V)); out: [S, D].
// An id outside [0, V) is InvalidArgument. On a GPU that check reads the ids back and waits,
// unless `host_ids`, the same ids on the host ([S] I32, CPU), is given: it is checked instead.
void embedding(const Tensor& table, const Tensor& ids, Tensor& out, const Tensor* host_ids = nullptr);

// InvalidArgument for the first of n ids outside [0, vocab): the check every path above shares.
void check_token_ids(const int32_t* ids, int64_t n, int64_t vocab);

// Backends: ids_checked says the dispatch has checked them on the host (always so on the CPU).
namespace cpu {
void embedding(const Tensor& table, const Tensor& ids, Tensor& out);
}
namespace cuda {
void embedding(const Tensor& table, const Tensor& ids, Tensor& out, bool ids_checked);
}

}  // namespace falcon::ops
