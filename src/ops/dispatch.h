// Shared argument checks and device dispatch for ops. Model code never includes this.
#pragma once

#include <initializer_list>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "ops/op_profile.h"

namespace falcon::ops {

// Throws InvalidArgument "<op>: <what>" unless every tensor is defined and on one device.
inline Device common_device(const char* op, std::initializer_list<const Tensor*> ts) {
  Device d = Device::CPU;
  bool first = true;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) throw InvalidArgument(std::string(op) + ": undefined tensor argument");
    if (first) {
      d = t->device();
      first = false;
    } else if (t->device() != d) {
      throw InvalidArgument(std::string(op) + ": tensors on different devices");
    }
  }
  return d;
}

inline void check_shape(const char* op, const char* name, const Tensor& t, const Shape& want) {
  if (t.shape() != want) {
    throw InvalidArgument(std::string(op) + ": " + name + " is " + t.describe() + ", expected " + shape_str(want));
  }
}

inline void check_dtype(const char* op, const char* name, const Tensor& t, DType want) {
  if (t.dtype() != want) {
    throw InvalidArgument(std::string(op) + ": " + name + " is " + t.describe() + ", expected dtype " +
                          dtype_name(want));
  }
}

inline void check_rank(const char* op, const char* name, const Tensor& t, int rank) {
  if (t.rank() != rank) {
    throw InvalidArgument(std::string(op) + ": " + name + " is " + t.describe() + ", expected rank " +
                          std::to_string(rank));
  }
}

}  // namespace falcon::ops

// Calls the CUDA entry point when the backend is built (timed under FALCON_OP_PROFILE, keyed
// by the dispatching function's name); otherwise reports it missing.
#ifdef FALCON_HAS_CUDA
#define FALCON_CUDA_DISPATCH(call)                          \
  {                                                         \
    const ::falcon::ops::OpProfileScope falcon_op_profile_(__func__); \
    call;                                                   \
  }
#else
#define FALCON_CUDA_DISPATCH(call) \
  throw ::falcon::Unsupported("this build has no CUDA backend (configure with -DFALCON_CUDA=ON)")
#endif
