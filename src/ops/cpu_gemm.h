// A packed single-precision matrix multiply for the CPU kernels of the image ops
// (conv2d, window attention). Not an op: no device dispatch; CPU kernels call it directly.
//
//   C[m, n] = sum_k A[m, k] * B[k, n]        m < M, n < N, k < K
//
// A is packed once by pack_a (weights are reused across many column tiles). B is never
// packed by the caller: row k of B starts at b_base + b_row_offset[k] and its columns are
// contiguous, so an implicit im2col (each row a shifted view of a padded image) costs
// nothing to build. Columns are processed in tiles of kTileN; the caller receives each
// finished tile (all M rows) and writes it wherever it belongs.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace falcon::ops::cpu {

// Columns per tile handed to the epilogue.
constexpr int kGemmTileN = 32;

struct PackedA {
  int64_t m = 0, k = 0;
  int64_t m_blocks = 0;
  std::vector<float> data;  // [m_blocks][k][mr], zero rows past m
};

// a(m, k) returns A[m, k].
PackedA pack_a(int64_t m, int64_t k, const std::function<float(int64_t, int64_t)>& a);
// A given as a row-major matrix with leading dimension lda; reuses dst's storage (hot loops).
void pack_a(PackedA& dst, const float* a, int64_t lda, int64_t m, int64_t k);
// A given transposed: A[m, k] = at[k * lda + m].
void pack_a_transposed(PackedA& dst, const float* at, int64_t lda, int64_t m, int64_t k);

// Epilogue for one tile: c is [M][kGemmTileN] row-major, holding columns [n0, n0 + count).
using GemmTileFn = std::function<void(const float* c, int64_t n0, int64_t count)>;

// An elementwise map applied to B as it is read: row k becomes act(B[k, :] * scale[k] +
// shift[k]), act = SiLU or identity (a GroupNorm + SiLU folded into the next convolution).
struct RowTransform {
  const float* scale = nullptr;
  const float* shift = nullptr;
  bool silu = false;
};

// Runs C = A * B for columns [n_begin, n_end) on the calling thread (callers parallelise
// over column ranges). A chunk of up to 32 tiles is finished before their epilogues run, and
// it reads only its own columns of B, so an epilogue may overwrite those columns of B
// (in-place 1x1 convolution).
void gemm_columns(const PackedA& a, const float* b_base, const int64_t* b_row_offset,
                  int64_t n_begin, int64_t n_end, const GemmTileFn& epilogue,
                  const RowTransform* transform = nullptr);

}  // namespace falcon::ops::cpu
