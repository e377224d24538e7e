#include "ops/packed_weight.h"

#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/quantize.h"

namespace falcon::ops::cpu {

namespace {

// Position of lane j inside a k-row of a BF16 panel (see packed_weight.h).
int bf16_pos(int j, int width) {
  if (width < kPanel) return j;
  return j < kPanel / 2 ? 2 * j : 2 * (j - kPanel / 2) + 1;
}

}  // namespace

void pack_panel(const float* w, int width, int64_t k, DType dtype, uint8_t* out) {
  auto src = [&](int j, int64_t kk) { return w[j * k + kk]; };
  switch (dtype) {
    case DType::F32: {
      auto* o = reinterpret_cast<float*>(out);
      for (int64_t kk = 0; kk < k; ++kk)
        for (int j = 0; j < width; ++j) o[kk * width + j] = src(j, kk);
      return;
    }
    case DType::BF16:
    case DType::F16: {
      auto* o = reinterpret_cast<uint16_t*>(out);
      for (int64_t kk = 0; kk < k; ++kk) {
        for (int j = 0; j < width; ++j) {
          const float v = src(j, kk);
          if (dtype == DType::BF16) o[kk * width + bf16_pos(j, width)] = f32_to_bf16(v);
          else o[kk * width + j] = f32_to_f16(v);
        }
      }
      return;
    }
    case DType::Q8:
    case DType::Q4: {
      const bool q8 = dtype == DType::Q8;
      const size_t chunk = size_t(width) * (q8 ? 36 : 20);
      std::vector<int8_t> q(size_t(width) * kQuantBlock);
      for (int64_t b = 0; b < k / kQuantBlock; ++b) {
        uint8_t* c = out + size_t(b) * chunk;
        float* scales = reinterpret_cast<float*>(c);
        uint8_t* vals = c + size_t(width) * 4;
        for (int j = 0; j < width; ++j) {
          const float* row = w + j * k + b * kQuantBlock;
          scales[j] = q8 ? quantize_block_q8(row, q.data() + j * kQuantBlock)
                         : quantize_block_q4(row, q.data() + j * kQuantBlock);
        }
        if (q8) {
          for (int kk = 0; kk < kQuantBlock; ++kk)
            for (int j = 0; j < width; ++j) vals[kk * width + j] = uint8_t(q[size_t(j) * kQuantBlock + kk]);
        } else {
          std::memset(vals, 0, size_t(width) * 16);
          for (int kk = 0; kk < kQuantBlock; ++kk) {
            for (int j = 0; j < width; ++j) {
              const auto u = uint8_t(q[size_t(j) * kQuantBlock + kk] + 8);
              size_t byte;
              int shift;
              if (width == kPanel) {
                byte = size_t(kk) * 16 + size_t(j % 16);
                shift = j < 16 ? 0 : 4;
              } else {
                const size_t e = size_t(kk) * size_t(width) + size_t(j);
                byte = e / 2;
                shift = e % 2 ? 4 : 0;
              }
              vals[byte] = uint8_t(vals[byte] | (u << shift));
            }
          }
        }
      }
      return;
    }
    default:
      throw Unsupported(std::string("linear weight dtype ") + dtype_name(dtype));
  }
}


void decode_panel(const PackedWeight& w, int64_t p, int64_t k0, int64_t kc, float* out) {
  const int width = w.width(p);
  const uint8_t* base = w.panel(p);
  for (int64_t kk = 0; kk < kc; ++kk) {
    float* o = out + kk * kPanel;
    for (int j = width; j < kPanel; ++j) o[j] = 0.f;
  }
  switch (w.dtype) {
    case DType::F32: {
      const auto* s = reinterpret_cast<const float*>(base);
      for (int64_t kk = 0; kk < kc; ++kk)
        for (int j = 0; j < width; ++j) out[kk * kPanel + j] = s[(k0 + kk) * width + j];
      return;
    }
    case DType::BF16:
    case DType::F16: {
      const auto* s = reinterpret_cast<const uint16_t*>(base);
      for (int64_t kk = 0; kk < kc; ++kk) {
        for (int j = 0; j < width; ++j) {
          out[kk * kPanel + j] = w.dtype == DType::BF16 ? bf16_to_f32(s[(k0 + kk) * width + bf16_pos(j, width)])
                                                        : f16_to_f32(s[(k0 + kk) * width + j]);
        }
      }
      return;
    }
    case DType::Q8:
    case DType::Q4: {
      const bool q8 = w.dtype == DType::Q8;
      const size_t chunk = size_t(width) * (q8 ? 36 : 20);
      for (int64_t kk = 0; kk < kc; ++kk) {
        const int64_t k = k0 + kk;
        const uint8_t* c = base + size_t(k / kQuantBlock) * chunk;
        const auto* scales = reinterpret_cast<const float*>(c);
        const uint8_t* vals = c + size_t(width) * 4;
        const int r = int(k % kQuantBlock);
        for (int j = 0; j < width; ++j) {
          int q;
          if (q8) {
            q = int8_t(vals[r * width + j]);
          } else if (width == kPanel) {
            q = ((vals[r * 16 + j % 16] >> (j < 16 ? 0 : 4)) & 15) - 8;
          } else {
            const size_t e = size_t(r) * size_t(width) + size_t(j);
            q = ((vals[e / 2] >> (e % 2 ? 4 : 0)) & 15) - 8;
          }
          out[kk * kPanel + j] = dequantize(q, scales[j]);
        }
      }
      return;
    }
    default:
      throw InternalError("decode_panel: bad dtype");
  }
}

}  // namespace falcon::ops::cpu
