#include "ops/feed_forward.h"

#include <string>

#include "ops/dispatch.h"
#include "ops/linear.h"

namespace falcon::ops {

void feed_forward(Tensor& x, const Tensor& w13, const Tensor& w2, float eps,
                  const FeedForwardScratch& s) {
  const char* op = "feed_forward";
  if (!s.n || !s.a || !s.g) throw InvalidArgument("feed_forward: missing scratch tensors");
  const Device d = common_device(op, {&x, &w13, &w2, s.n, s.a, s.g});
  check_rank(op, "x", x, 2);
  check_rank(op, "w13", w13, 2);
  check_rank(op, "w2", w2, 2);
  const int64_t B = x.dim(0), D = x.dim(1), F = w2.dim(1);
  if (w13.dim(0) != 2 * F || w13.dim(1) != D || w2.dim(0) != D) {
    throw InvalidArgument("feed_forward: w13 " + w13.describe() + " and w2 " + w2.describe() +
                          " do not fit x " + x.describe() + " (expected [2F, D] and [D, F])");
  }
  const auto scratch = [&](const char* name, const Tensor& t, int64_t cols) {
    if (t.rank() != 2 || t.dim(0) != B || t.dim(1) != cols || t.dtype() != x.dtype()) {
      throw InvalidArgument(std::string("feed_forward: scratch ") + name + " is " + t.describe() +
                            ", expected [" + std::to_string(B) + ", " + std::to_string(cols) +
                            "] in x's dtype");
    }
  };
  scratch("n", *s.n, D);
  scratch("a", *s.a, 2 * F);
  scratch("g", *s.g, F);

#ifdef FALCON_HAS_CUDA
  if (d == Device::CUDA) {
    const OpProfileScope profile(__func__);
    if (cuda::feed_forward(x, w13, w2, eps)) return;
  }
#else
  (void)d;
#endif
  const LinearPrologue norm{LinearPrologue::Kind::RmsNorm, eps, s.n};
  const LinearPrologue gate{LinearPrologue::Kind::SquaredReluGate, 0.f, s.g};
  linear(x, w13, nullptr, *s.a, false, norm);               // (B, 2F)
  linear(*s.a, w2, nullptr, x, /*accumulate=*/true, gate);  // x += (B, D)
}

}  // namespace falcon::ops
