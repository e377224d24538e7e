// A stream-style read kernel shared by memory_bandwidth and linear_bench: the decode floor is
// "bytes of weight / read bandwidth", so both must measure bandwidth the same way.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 intrinsics, PR 105593
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

namespace falcon::bench {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<char, FreeDeleter>;

// 2 MiB-aligned with huge pages asked for, as ops::prepare_linear_weight stores weights.
inline AlignedBuffer aligned_buffer(size_t bytes) {
  const size_t align = size_t(2) << 20;
  const size_t size = (bytes + align - 1) / align * align;
  auto* p = static_cast<char*>(std::aligned_alloc(align, size));
  if (!p) throw std::bad_alloc();
  madvise(p, size, MADV_HUGEPAGE);
  return AlignedBuffer(p);
}

inline constexpr size_t kPrefetchAhead = 2048;

// Sums `bytes` (a multiple of 256) of floats with 4 independent vector accumulators, the same
// access pattern as a GEMV that streams a weight once. Returns the sum so nothing is elided.
inline float read_sum(const char* p, size_t bytes) {
#if defined(__AVX512F__)
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 256) {
    // Asked for ahead, as the GEMV does: without it one core reads ~10% less on this VM.
    for (size_t l = 0; l < 256; l += 64) _mm_prefetch(p + i + l + kPrefetchAhead, _MM_HINT_T0);
    a0 = _mm512_add_ps(a0, _mm512_load_ps(reinterpret_cast<const float*>(p + i)));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(reinterpret_cast<const float*>(p + i + 64)));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(reinterpret_cast<const float*>(p + i + 128)));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(reinterpret_cast<const float*>(p + i + 192)));
  }
  alignas(64) float t[16];
  _mm512_store_ps(t, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  float s = 0;
  for (float v : t) s += v;
  return s;
#elif defined(__AVX2__)
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 128) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(reinterpret_cast<const float*>(p + i)));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(reinterpret_cast<const float*>(p + i + 32)));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(reinterpret_cast<const float*>(p + i + 64)));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(reinterpret_cast<const float*>(p + i + 96)));
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
#else
  float s[4] = {0, 0, 0, 0};
  const auto* f = reinterpret_cast<const float*>(p);
  for (size_t i = 0; i < bytes / 4; i += 4) {
    for (int j = 0; j < 4; ++j) s[j] += f[i + size_t(j)];
  }
  return s[0] + s[1] + s[2] + s[3];
#endif
}

// Read bandwidth in bytes/s over a buffer of `bytes`, `threads` threads each reading its own
// contiguous share (as the GEMV partitions N) as `streams` equal parts read side by side,
// `piece` bytes of each in turn (a GEMV reads a few weight panels at once, a 64- or 128-byte
// row of each in turn; one stream per core leaves bandwidth unused on some machines). Best of
// `reps` passes after one warm-up pass that also faults the pages in (2 MiB-aligned, huge pages
// asked for, like prepared weights). A buffer much larger than the LLC measures DRAM.
inline double read_bandwidth(size_t bytes, int threads, int reps, int streams = 1, size_t piece = 4096) {
  const size_t unit = 4096 * size_t(threads) * size_t(streams);
  bytes = bytes / unit * unit;
  AlignedBuffer buf = aligned_buffer(bytes);
  char* p = buf.get();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < int64_t(bytes / 4096); ++i) std::memset(p + size_t(i) * 4096, 1, 4096);
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r <= reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const size_t share = bytes / size_t(omp_get_num_threads());
      const char* base = p + share * size_t(omp_get_thread_num());
      const size_t part = share / size_t(streams);
      for (size_t off = 0; off < part; off += piece)
        for (int s = 0; s < streams; ++s) total += read_sum(base + size_t(s) * part + off, piece);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    sink = sink + total;
    if (r > 0) best = std::max(best, double(bytes) / s);
  }
  return best;
}

// The best over 1, 2, 4 or 8 streams per thread and 256 B or 4 KiB pieces: the bandwidth a
// reader can get, the floor's denominator.
inline double best_read_bandwidth(size_t bytes, int threads, int reps) {
  double best = 0;
  for (int s : {1, 2, 4, 8})
    for (size_t piece : {size_t(256), size_t(4096)}) best = std::max(best, read_bandwidth(bytes, threads, reps, s, piece));
  return best;
}

}  // namespace falcon::bench
