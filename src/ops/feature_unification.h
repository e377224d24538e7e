// AnyUp's learned feature unification (LearnedFeatureUnification): maps features with any
// channel count c to a fixed O channels with O learned k x k kernels.
//
// Every input channel g is convolved with every kernel o (zero padding k/2, stride 1) and
// divided by the number of taps that fall inside the image: y[i] with i = g*O + o. The c*O
// values of a pixel are then read as a row-major [O, c] grid (row i / c, column i % c; a
// reinterpretation of the flat index, not a transpose), softmax is taken over the O rows of
// each column, and the result is the mean over the c columns:
//
//   out[r, p] = 1/c * sum_j softmax_r(y[r*c + j, p])
//
// x: [c, h, w]; basis: [O, 1, k, k] (k odd); out: [O, h, w]. F32.
#pragma once

#include "core/tensor.h"

namespace falcon::ops {

void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out);

namespace cpu {
void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out);
}
namespace cuda {
void feature_unification(const Tensor& x, const Tensor& basis, Tensor& out);
}

}  // namespace falcon::ops
