// How the CUDA kernels of the segmentation path multiply (the CPU always computes in f32 and
// ignores it). F32: f32 FMAs, the fp32 parity mode (results match the CPU to f32 rounding).
// TF32: tensor cores with TF32 inputs (10-bit mantissa, rounded to nearest) and f32
// accumulation, ~1e-3 relative per product: the engine's default BF16 mode.
#pragma once

namespace falcon::ops {

enum class MathPrecision { F32, TF32 };

}  // namespace falcon::ops
