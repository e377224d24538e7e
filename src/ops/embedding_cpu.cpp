#include "core/error.h"
#include "ops/embedding.h"

namespace falcon::ops::cpu {

void embedding(const Tensor& table, const Tensor& ids, Tensor& out) {
  if (out.dtype() != DType::F32) throw Unsupported("embedding (cpu): only F32 output");
  const int64_t D = table.dim(1), S = ids.dim(0);
  const int32_t* id = ids.data<int32_t>();
  float* o = out.data<float>();
  for (int64_t s = 0; s < S; ++s) {  // ids checked by the dispatch
    float* row = o + s * D;
    switch (table.dtype()) {
      case DType::F32: {
        const float* src = table.data<float>() + int64_t(id[s]) * D;
        for (int64_t j = 0; j < D; ++j) row[j] = src[j];
        break;
      }
      case DType::BF16: {
        const uint16_t* src = table.data<uint16_t>() + int64_t(id[s]) * D;
        for (int64_t j = 0; j < D; ++j) row[j] = bf16_to_f32(src[j]);
        break;
      }
      case DType::F16: {
        const uint16_t* src = table.data<uint16_t>() + int64_t(id[s]) * D;
        for (int64_t j = 0; j < D; ++j) row[j] = f16_to_f32(src[j]);
        break;
      }
      default:
        throw Unsupported("embedding (cpu): table dtype");
    }
  }
}

}  // namespace falcon::ops::cpu
