// Area pooling of one image (torch.nn.functional.adaptive_avg_pool2d): output cell (i, j)
// is the mean of input rows [floor(i*H/h), ceil((i+1)*H/h)) and the same for columns. When
// h divides H and w divides W this is the block mean AnyUp's reshape-based _pool_to takes.
// x: [C, H, W]; out: [C, h, w] with h <= H, w <= W. F32.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void adaptive_avg_pool2d(const Tensor& x, Tensor& out);

namespace cpu {
void adaptive_avg_pool2d(const Tensor& x, Tensor& out);
}
namespace cuda {
void adaptive_avg_pool2d(const Tensor& x, Tensor& out);
}

}  // namespace falcon::ops
