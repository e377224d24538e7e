// Linear layers on CUDA: cuBLASLt for F32 x F32 and BF16 x BF16; every other weight/activation
// pair through the dequantising kernels of linear_dequant_cuda.cu, or, with many rows, through
// cuBLASLt on its weights expanded to the activation dtype a chunk at a time.
//
// y[M, N] = x[M, K] . w[N, K]^T is, in cuBLAS's column-major terms, D (N x M) = op(A) . B with
// A = w read as a K x N column-major matrix and transposed, B = x read as K x M. Accumulation
// is f32 (CUBLAS_COMPUTE_32F: no TF32, so the F32 parity mode is true f32). Bias rides in the
// epilogue and `accumulate` is beta = 1 with C = D = y.
//
// Each distinct problem (shapes, dtypes, epilogue, pointer alignment) gets a plan, built once:
// descriptors plus the algorithm cuBLASLt's heuristic ranks first. Later calls only set the
// bias pointer and launch, so after a warm-up a call allocates nothing and never synchronises.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ops/convert.h"
#include "ops/cuda_common.cuh"
#include "ops/linear.h"
#include "ops/cuda_tuning.h"
#include "ops/grow_buffer_cuda.cuh"
#include "ops/linear_weight_cuda.h"

namespace falcon::ops::cuda {

namespace {

void check_lt(cublasStatus_t st, const char* call) {
  if (st == CUBLAS_STATUS_SUCCESS) return;
  const std::string msg = std::string(call) + ": " + cublasGetStatusString(st);
  if (st == CUBLAS_STATUS_ALLOC_FAILED) throw OutOfMemory("cuBLASLt out of memory in " + msg);
  throw Error("cuBLASLt error in " + msg);
}
#define FALCON_LT_CHECK(call) check_lt((call), #call)

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: throw Unsupported(std::string("linear (cuda): dtype ") + dtype_name(t));
  }
}

// Largest power of two (up to 16) dividing the address: cuBLASLt's kernels need to know it.
int alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 16;
  while (al > 1 && a % uintptr_t(al) != 0) al /= 2;
  return al;
}

struct PlanKey {
  int64_t M, N, K, ldd;
  int device;
  DType a_type, b_type, d_type;
  bool bias, accumulate;
  int align_a, align_b, align_d, align_bias;
  bool operator==(const PlanKey& o) const { return std::memcmp(this, &o, sizeof(PlanKey)) == 0; }
};

struct PlanKeyHash {
  size_t operator()(const PlanKey& k) const {
    // FNV-1a over the bytes (the key is zero-initialised, padding included).
    const auto* p = reinterpret_cast<const unsigned char*>(&k);
    size_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(PlanKey); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
  }
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool bias_in_epilogue = false;  // false: the bias is added by a separate kernel
};

LinearTuning g_tuning;
std::mutex g_plans_mutex;
std::unordered_map<PlanKey, Plan, PlanKeyHash> g_plans;

// Returns true and fills `plan` when cuBLASLt has an algorithm for this configuration.
bool build_plan(const PlanKey& k, bool bias_epilogue, Plan& plan) {
  Plan p;
  FALCON_LT_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  FALCON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  FALCON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (bias_epilogue) {
    const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
    const int32_t bias_type = CUDA_R_32F;
    FALCON_LT_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)));
    FALCON_LT_CHECK(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
  }
  FALCON_LT_CHECK(cublasLtMatrixLayoutCreate(&p.a, cuda_type(k.a_type), uint64_t(k.K), uint64_t(k.N), k.K));
  FALCON_LT_CHECK(cublasLtMatrixLayoutCreate(&p.b, cuda_type(k.b_type), uint64_t(k.K), uint64_t(k.M), k.K));
  FALCON_LT_CHECK(cublasLtMatrixLayoutCreate(&p.d, cuda_type(k.d_type), uint64_t(k.N), uint64_t(k.M), k.ldd));

  cublasLtMatmulPreference_t pref = nullptr;
  FALCON_LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws_bytes = 0;
  lt_workspace(&ws_bytes);
  FALCON_LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                       sizeof(ws_bytes)));
  const uint32_t al_a = uint32_t(k.align_a), al_b = uint32_t(k.align_b), al_d = uint32_t(k.align_d);
  FALCON_LT_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)));
  FALCON_LT_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)));
  FALCON_LT_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof(al_d)));
  FALCON_LT_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof(al_d)));

  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt_handle(), p.desc, p.a, p.b, p.d, p.d, pref, 1,
                                                           &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.d);
    cublasLtMatmulDescDestroy(p.desc);
    return false;
  }
  p.algo = result.algo;
  p.bias_in_epilogue = bias_epilogue;
  plan = p;
  return true;
}

Plan& plan_for(const PlanKey& key) {
  std::lock_guard<std::mutex> lock(g_plans_mutex);
  auto it = g_plans.find(key);
  if (it != g_plans.end()) return it->second;
  Plan p;
  // An f32 bias in the epilogue of a bf16 output is not offered by every cuBLASLt: fall back
  // to a plain product plus a bias kernel rather than fail.
  if (!(key.bias && build_plan(key, true, p)) && !build_plan(key, false, p)) {
    throw Unsupported("linear (cuda): cuBLASLt has no algorithm for M=" + std::to_string(key.M) +
                      " N=" + std::to_string(key.N) + " K=" + std::to_string(key.K) + " (" +
                      dtype_name(key.b_type) + " x " + dtype_name(key.a_type) + ")");
  }
  return g_plans.emplace(key, p).first->second;
}

// y[m, n] += bias[n] (rows ldy apart), for the fallback path.
template <typename T>
__global__ void add_bias_kernel(T* y, const float* bias, int64_t M, int64_t N, int64_t ldy) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x) {
    T& o = y[(i / N) * ldy + i % N];
    o = from_f32<T>(to_f32(o) + bias[i % N]);
  }
}


// y[m, n] (row stride ldy) = x[m, :] . w[n, :] (+ bias[n]) (+ y) through cuBLASLt, for a pair it
// computes exactly in f32 accumulation (F32 x F32, BF16 x BF16).
void lt_product(const void* x, DType x_type, const void* w, DType w_type, int64_t M, int64_t N, int64_t K,
                const float* bias, void* y, DType y_type, int64_t ldy, bool accumulate) {
  int device = 0;
  FALCON_CUDA_CHECK(cudaGetDevice(&device));
  PlanKey key;
  std::memset(&key, 0, sizeof(key));
  key.M = M;
  key.N = N;
  key.K = K;
  key.ldd = ldy;
  key.device = device;
  key.a_type = w_type;
  key.b_type = x_type;
  key.d_type = y_type;
  key.bias = bias != nullptr;
  key.accumulate = accumulate;
  key.align_a = alignment(w);
  key.align_b = alignment(x);
  key.align_d = alignment(y);
  key.align_bias = bias ? alignment(bias) : 0;
  Plan& plan = plan_for(key);

  if (plan.bias_in_epilogue) {
    FALCON_LT_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  size_t ws_bytes = 0;
  void* ws = lt_workspace(&ws_bytes);
  FALCON_LT_CHECK(cublasLtMatmul(lt_handle(), plan.desc, &alpha, w, plan.a, x, plan.b, &beta, y, plan.d, y, plan.d,
                                 &plan.algo, ws, ws_bytes, stream()));
  if (bias && !plan.bias_in_epilogue) {
    dispatch_float(y_type, "linear", [&](auto tag) {
      using T = typename decltype(tag)::type;
      add_bias_kernel<T><<<grid_for(M * N, 256), 256, 0, stream()>>>(static_cast<T*>(y), bias, M, N, ldy);
      FALCON_CUDA_CHECK_LAUNCH("add_bias_kernel");
    });
  }
}

// Whether a product expands its weights for cuBLASLt (LinearTuning::expand_min_rows): weights
// cuBLASLt cannot read next to these activations, enough rows for tensor cores to beat the
// dequantising SIMT GEMM, and a K small enough for 64 rows in a chunk.
bool expands(const Tensor& x, const Tensor& w, int64_t M, int64_t K) {
  if (g_tuning.expand_min_rows <= 0 || M < g_tuning.expand_min_rows) return false;
  if (K * int64_t(row_bytes(x.dtype(), 1)) * 64 > g_tuning.expand_chunk_bytes) return false;
  switch (w.dtype()) {
    case DType::Q8:
    case DType::Q4: return true;  // float(q) * scale; rounded once more where x is BF16
    case DType::F16:
    case DType::BF16: return x.dtype() == DType::F32;  // exact in f32
    default: return false;
  }
}

// The expanded product: weight rows [n0, n1) decoded to x's dtype in a scratch chunk (written
// and read back while it is in L2), then cuBLASLt on that chunk into columns [n0, n1) of y.
// The scratch is allocated once at expand_chunk_bytes, so a captured graph's copy stays valid.
void expanded_product(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  const int64_t elem = int64_t(row_bytes(x.dtype(), 1));
  const int64_t chunk = std::max<int64_t>(64, g_tuning.expand_chunk_bytes / (K * elem) / 64 * 64);
  void* scratch = grow_buffer(GrowBuffer::ExpandedWeight, size_t(g_tuning.expand_chunk_bytes));
  for (int64_t n0 = 0; n0 < N; n0 += chunk) {
    const int64_t n1 = std::min(N, n0 + chunk);
    expand_weight_rows(w, n0, n1, x.dtype(), scratch);
    lt_product(x.raw(), x.dtype(), scratch, x.dtype(), M, n1 - n0, K, bias ? bias->data<float>() + n0 : nullptr,
               static_cast<char*>(y.raw()) + n0 * int64_t(row_bytes(y.dtype(), 1)), y.dtype(), N, accumulate);
  }
}

}  // namespace

void set_linear_tuning(const LinearTuning& t) { g_tuning = t; }
LinearTuning linear_tuning() { return g_tuning; }

void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  if (M == 0 || N == 0) return;
  if (x.dtype() != DType::F32 && x.dtype() != DType::BF16) {
    throw Unsupported(std::string("linear (cuda): activations in ") + dtype_name(x.dtype()));
  }
  if (K == 0) {
    linear_empty_k(bias, y, accumulate);
    return;
  }
  // cuBLASLt takes the pairs it computes exactly in f32 accumulation: F32 x F32 and BF16 x BF16.
  // Other pairs (F16/Q8/Q4 weights, F32 activations against BF16 weights, which cuBLASLt would
  // round to bf16) expand their weights for it when there are many rows, else decode them in
  // registers. Decode-sized products (a few rows) are bandwidth-bound GEMVs, where cuBLASLt's
  // launch setup and split-K reductions cost more than streaming the weight once.
  if (x.dtype() != w.dtype()) {
    if (expands(x, w, M, K)) {
      expanded_product(x, w, bias, y, accumulate);
    } else {
      linear_dequant(x, w, bias, y, accumulate);
    }
    return;
  }
  if (w.dtype() == DType::BF16 && M <= std::min(g_tuning.gemv_max_rows, 8)) {
    linear_dequant(x, w, bias, y, accumulate);
    return;
  }
  lt_product(x.raw(), x.dtype(), w.raw(), w.dtype(), M, N, K, bias ? bias->data<float>() : nullptr, y.raw(),
             y.dtype(), N, accumulate);
}

Tensor prepare_linear_weight(const Tensor& w, DType dtype) {
  if (!is_float(w.dtype())) throw InvalidArgument("prepare_linear_weight: source must be a float tensor");
  if (dtype == DType::Q8 || dtype == DType::Q4) return prepare_quantized_weight(w, dtype);
  if (!is_float(dtype)) {
    throw Unsupported(std::string("prepare_linear_weight (cuda): ") + dtype_name(dtype) + " storage");
  }
  // Upload as stored, convert on the device: a 0.6B model converts in milliseconds there.
  Tensor src = w.to(Device::CUDA);
  if (w.dtype() == dtype) return src;
  Tensor out = Tensor::empty(w.shape(), dtype, Device::CUDA);
  cuda::convert(src, out);
  synchronize();  // `src` is freed on return; the conversion must have read it
  return out;
}

}  // namespace falcon::ops::cuda
