#include <cstring>

#include "core/error.h"
#include "core/parallel.h"
#include "ops/convert.h"

namespace falcon::ops::cpu {

namespace {
float load(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    default: return f16_to_f32(t.data<uint16_t>()[i]);
  }
}
void store(Tensor& t, int64_t i, float v) {
  switch (t.dtype()) {
    case DType::F32: t.data<float>()[i] = v; break;
    case DType::BF16: t.data<uint16_t>()[i] = f32_to_bf16(v); break;
    default: t.data<uint16_t>()[i] = f32_to_f16(v); break;
  }
}
}  // namespace

void convert(const Tensor& x, Tensor& out) {
  if (x.dtype() == out.dtype()) {  // a copy (patches already in the model's dtype)
    const auto* src = static_cast<const char*>(x.raw());
    auto* dst = static_cast<char*>(out.raw());
    const int64_t elem = int64_t(row_bytes(x.dtype(), 1));
    parallel_for(x.numel(), 1 << 18, [&](int64_t b, int64_t e) {
      std::memcpy(dst + b * elem, src + b * elem, size_t((e - b) * elem));
    });
    return;
  }
  if (x.dtype() == DType::F32 && out.dtype() == DType::BF16) {
    // The common case (patches and activations to bf16): one branch-free loop the compiler
    // vectorises, instead of two dtype switches per element.
    const float* src = x.data<float>();
    uint16_t* dst = out.data<uint16_t>();
    parallel_for(x.numel(), 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dst[i] = f32_to_bf16(src[i]);
    });
    return;
  }
  parallel_for(x.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) store(out, i, load(x, i));
  });
}

void add(const Tensor& a, const Tensor& b, Tensor& out) {
  if (a.dtype() != DType::F32) throw Unsupported("add (cpu): only F32");
  const float* x = a.data<float>();
  const float* y = b.data<float>();
  float* o = out.data<float>();
  parallel_for(a.numel(), 1 << 15, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) o[i] = x[i] + y[i];
  });
}

}  // namespace falcon::ops::cpu
