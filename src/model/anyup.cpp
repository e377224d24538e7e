#include "model/anyup.h"

#include <cfloat>
#include <cmath>

#include "core/error.h"
#include "model/weights.h"
#include "ops/adaptive_avg_pool2d.h"
#include "ops/channel_affine.h"
#include "ops/channel_norm.h"
#include "ops/conv2d.h"
#include "ops/feature_unification.h"
#include "ops/grid_rope.h"
#include "ops/group_norm.h"
#include "ops/window_cross_attention.h"

namespace falcon {
namespace {

constexpr int kGroups = 8;              // GroupNorm(8, qk)
constexpr float kGroupNormEps = 1e-5f;  // nn.GroupNorm default
constexpr float kWindowRatio = 0.1f;
constexpr int64_t kUnificationKernel = 5;
constexpr float kL2Eps = 1e-12f;        // F.normalize default
constexpr float kRmsEps = FLT_EPSILON;  // nn.RMSNorm(eps=None) in float32
constexpr double kImagenetMean[3] = {0.485, 0.456, 0.406};
constexpr double kImagenetStd[3] = {0.229, 0.224, 0.225};

AnyUpResBlock load_res_block(const SafetensorsFile& f, const std::string& p, int64_t qk, Device d) {
  AnyUpResBlock b;
  b.norm1_weight = load_f32(f, p + "block.0.weight", {qk}, d);
  b.norm1_bias = load_f32(f, p + "block.0.bias", {qk}, d);
  b.conv1 = load_f32(f, p + "block.2.weight", {qk, qk, 1, 1}, d);
  b.norm2_weight = load_f32(f, p + "block.3.weight", {qk}, d);
  b.norm2_bias = load_f32(f, p + "block.3.bias", {qk}, d);
  b.conv2 = load_f32(f, p + "block.5.weight", {qk, qk, 1, 1}, d);
  return b;
}

AnyUpEncoder load_encoder(const SafetensorsFile& f, const std::string& p, const std::string& stem,
                          const Shape& stem_shape, int64_t qk, Device d) {
  AnyUpEncoder e;
  e.stem = load_f32(f, p + "0." + stem, stem_shape, d);
  e.blocks[0] = load_res_block(f, p + "1.", qk, d);
  e.blocks[1] = load_res_block(f, p + "2.", qk, d);
  return e;
}

Tensor empty_like_on(const Shape& s, const Tensor& like) {
  return Tensor::empty(s, DType::F32, like.device());
}

// GroupNorm statistics travel with the tensor they describe: every 1x1 convolution writes
// the moments of its output and reads its input through the previous GroupNorm + SiLU, so a
// ResBlock makes two passes over its image instead of six.
struct Normalized {
  Tensor moments;       // (C, 2) per-channel mean and variance of the tensor
  Tensor scale, shift;  // (C) the GroupNorm as an affine map (filled by fold)

  explicit Normalized(const Tensor& like, int64_t c)
      : moments(empty_like_on({c, 2}, like)),
        scale(empty_like_on({c}, like)),
        shift(empty_like_on({c}, like)) {}

  // GroupNorm(weight, bias) of the described tensor as x * scale + shift.
  void fold(const Tensor& weight, const Tensor& bias) {
    ops::group_norm_affine(moments, weight, bias, kGroups, kGroupNormEps, scale, shift);
  }
  ops::Conv2dFusion reading(Tensor* out_moments) const {
    ops::Conv2dFusion f;
    f.in_scale = &scale;
    f.in_shift = &shift;
    f.in_silu = true;
    f.out_moments = out_moments;
    return f;
  }
};

// x += conv2(SiLU(GN2(conv1(SiLU(GN1(x)))))); nx holds x's moments before and after;
// y (x's shape) receives the inner activation.
void res_block(const AnyUpResBlock& b, Tensor& x, Normalized& nx, Tensor& y,
               ops::MathPrecision precision) {
  Normalized ny(x, x.dim(0));
  nx.fold(b.norm1_weight, b.norm1_bias);
  ops::conv2d(x, b.conv1, nullptr, 0, ops::PadMode::Zeros, y, false, nx.reading(&ny.moments),
              precision);  // (qk, H, W)
  ny.fold(b.norm2_weight, b.norm2_bias);
  ops::conv2d(y, b.conv2, nullptr, 0, ops::PadMode::Zeros, x, /*accumulate=*/true,
              ny.reading(&nx.moments), precision);
}

// A 1x1-stem encoder applied at full resolution and area-pooled to out's grid:
// out = pool(encoder(in)). `x` receives the stem output (it may be `in` itself: the 1x1
// stem runs in place); `scratch` is another full-resolution buffer. The last ResBlock is
// pooled before its final 1x1 convolution (pooling commutes with it and with the identity),
// which saves one full-resolution convolution.
void encode_pooled(const AnyUpEncoder& e, const Tensor& in, Tensor& x, Tensor& scratch,
                   Tensor& out, ops::MathPrecision precision) {
  const int64_t qk = out.dim(0);
  Normalized nx(x, qk), ny(x, qk);
  ops::Conv2dFusion stem;
  stem.out_moments = &nx.moments;
  ops::conv2d(in, e.stem, nullptr, 0, ops::PadMode::Zeros, x, false, stem,
              precision);                               // (qk, H, W)
  res_block(e.blocks[0], x, nx, scratch, precision);  // (qk, H, W)
  const AnyUpResBlock& b = e.blocks[1];
  nx.fold(b.norm1_weight, b.norm1_bias);
  ops::conv2d(x, b.conv1, nullptr, 0, ops::PadMode::Zeros, scratch, false,
              nx.reading(&ny.moments), precision);  // (qk, H, W)
  ny.fold(b.norm2_weight, b.norm2_bias);
  ops::channel_affine(scratch, ny.scale, ny.shift, scratch, /*silu=*/true);  // (qk, H, W)
  Tensor branch = empty_like_on({qk, out.dim(1), out.dim(2)}, out);
  ops::adaptive_avg_pool2d(scratch, branch);  // (qk, h, w)
  ops::adaptive_avg_pool2d(x, out);           // (qk, h, w)
  ops::conv2d(branch, b.conv2, nullptr, 0, ops::PadMode::Zeros, out, /*accumulate=*/true, {},
              precision);
}

// Two ResBlocks on a small map whose stem was not a fused 1x1 convolution.
void res_blocks(const AnyUpEncoder& e, Tensor& x, ops::MathPrecision precision) {
  Normalized nx(x, x.dim(0));
  ops::channel_moments(x, nx.moments);
  Tensor y = empty_like_on(x.shape(), x);
  res_block(e.blocks[0], x, nx, y, precision);
  res_block(e.blocks[1], x, nx, y, precision);
}

}  // namespace

AnyUpWeights load_anyup_weights(const SafetensorsFile& f, Device d, const std::string& p) {
  AnyUpWeights w;
  const std::string stem_name = p + "image_encoder.0.weight";
  const TensorInfo& stem = f.info(stem_name);
  if (stem.shape.size() != 4 || stem.shape[1] != 3) {
    throw FileError(f.path() + ": tensor '" + stem_name + "' has shape " + shape_str(stem.shape) +
                    ", expected [qk, 3, 1, 1]");
  }
  const int64_t qk = stem.shape[0];
  w.qk_dim = qk;
  if (qk % kGroups != 0 || qk % w.heads != 0 || qk % 2 != 0) {
    throw FileError(f.path() + ": tensor '" + stem_name + "': qk dim " + std::to_string(qk) +
                    " does not split into GroupNorm groups and attention heads");
  }
  w.image_encoder = load_encoder(f, p + "image_encoder.", "weight", {qk, 3, 1, 1}, qk, d);
  w.query_encoder = load_encoder(f, p + "query_encoder.", "weight", {qk, qk, 1, 1}, qk, d);
  w.key_encoder = load_encoder(f, p + "key_encoder.", "weight", {qk, qk, 1, 1}, qk, d);
  w.key_features_encoder = load_encoder(f, p + "key_features_encoder.", "basis",
                                        {qk, 1, kUnificationKernel, kUnificationKernel}, qk, d);
  w.aggregation = load_encoder(f, p + "aggregation.", "weight", {qk, 2 * qk, 3, 3}, qk, d);
  w.rope_freqs = load_f32(f, p + "rope.freqs", {2, qk}, d);
  w.cross_conv = load_f32(f, p + "cross_decode.conv2d.weight", {qk, qk, 3, 3}, d);
  w.norm_q = load_f32(f, p + "cross_decode.cross_attn.norm_q.weight", {qk}, d);
  w.norm_k = load_f32(f, p + "cross_decode.cross_attn.norm_k.weight", {qk}, d);
  // in_proj_weight stacks the q, k and v projections; AnyUp uses v unprojected.
  const Tensor in_w =
      load_f32(f, p + "cross_decode.cross_attn.attention.in_proj_weight", {3 * qk, qk}, d);
  const Tensor in_b =
      load_f32(f, p + "cross_decode.cross_attn.attention.in_proj_bias", {3 * qk}, d);
  w.proj_q = in_w.rows(0, qk).reshape({qk, qk, 1, 1});
  w.proj_k = in_w.rows(qk, 2 * qk).reshape({qk, qk, 1, 1});
  w.proj_q_bias = in_b.rows(0, qk);
  w.proj_k_bias = in_b.rows(qk, 2 * qk);
  // (x * 0.5 + 0.5 - mean) / std = x * (0.5 / std) + (0.5 - mean) / std
  std::vector<float> scale(3), shift(3);
  for (int c = 0; c < 3; ++c) {
    scale[size_t(c)] = float(0.5 / kImagenetStd[c]);
    shift[size_t(c)] = float((0.5 - kImagenetMean[c]) / kImagenetStd[c]);
  }
  w.image_scale = Tensor::from_vector(scale, {3}).to(d);
  w.image_shift = Tensor::from_vector(shift, {3}).to(d);
  return w;
}

void anyup_upsample(const AnyUpWeights& w, const Tensor& image, const Tensor& features,
                    int64_t out_h, int64_t out_w, Tensor& out, ops::MathPrecision precision) {
  if (image.rank() != 3 || image.dim(0) != 3 || features.rank() != 3 ||
      features.dim(0) % w.heads != 0) {
    throw InvalidArgument(
        "anyup_upsample: image " + image.describe() + " and features " + features.describe() +
        " must be (3, H, W) and (S, h, w) with S divisible by " + std::to_string(w.heads));
  }
  const int64_t qk = w.qk_dim, s = features.dim(0), h = features.dim(1), fw = features.dim(2);
  const int64_t H = image.dim(1), W = image.dim(2);
  auto empty = [&](const Shape& shape) { return empty_like_on(shape, features); };

  // Image encoding: (x * 0.5 + 0.5 - mean) / std, image encoder, 2-D RoPE.
  Tensor img = empty({3, H, W});  // (3, H, W)
  ops::channel_affine(image, w.image_scale, w.image_shift, img);
  Tensor enc = empty({qk, H, W});      // (qk, H, W)
  Tensor scratch = empty({qk, H, W});  // (qk, H, W)
  {
    Normalized ne(enc, qk);
    ops::Conv2dFusion stem;
    stem.out_moments = &ne.moments;
    ops::conv2d(img, w.image_encoder.stem, nullptr, 0, ops::PadMode::Zeros, enc, false, stem,
                precision);
    img = Tensor();
    res_block(w.image_encoder.blocks[0], enc, ne, scratch, precision);  // (qk, H, W)
    res_block(w.image_encoder.blocks[1], enc, ne, scratch, precision);  // (qk, H, W)
  }
  ops::grid_rope(enc, w.rope_freqs, enc);  // (qk, H, W)

  // Queries: the query encoder pooled to the output grid.
  Tensor q = empty({qk, out_h, out_w});  // (qk, Ho, Wo)
  {
    Tensor x = empty({qk, H, W});  // (qk, H, W)
    encode_pooled(w.query_encoder, enc, x, scratch, q, precision);
  }
  // Keys: the key encoder pooled to the feature grid (the last use of enc: its stem runs in
  // place), next to the unified L2-normalised features; then the aggregation.
  Tensor keys_in = empty({2 * qk, h, fw});  // (2 qk, h, w)
  {
    Tensor k_image = keys_in.rows(0, qk);  // (qk, h, w)
    encode_pooled(w.key_encoder, enc, enc, scratch, k_image, precision);
  }
  enc = Tensor();
  scratch = Tensor();
  {
    Tensor normed = empty({s, h, fw});  // (S, h, w)
    ops::channel_l2_normalize(features, kL2Eps, normed);
    Tensor k_feat = keys_in.rows(qk, 2 * qk);  // (qk, h, w)
    ops::feature_unification(normed, w.key_features_encoder.stem, k_feat);
    res_blocks(w.key_features_encoder, k_feat, precision);  // (qk, h, w)
  }
  Tensor k = empty({qk, h, fw});  // (qk, h, w)
  ops::conv2d(keys_in, w.aggregation.stem, nullptr, 1, ops::PadMode::Reflect, k, false, {},
              precision);
  res_blocks(w.aggregation, k, precision);  // (qk, h, w)

  // Cross attention: q through a 3x3 conv, RMSNorm and projection; k through RMSNorm and
  // projection; v = the features.
  Tensor qc = empty({qk, out_h, out_w});  // (qk, Ho, Wo)
  ops::conv2d(q, w.cross_conv, nullptr, 1, ops::PadMode::Zeros, qc, false, {}, precision);
  ops::channel_rms_norm(qc, w.norm_q, kRmsEps, qc);
  ops::conv2d(qc, w.proj_q, &w.proj_q_bias, 0, ops::PadMode::Zeros, q, false, {},
              precision);  // (qk, Ho, Wo)
  qc = Tensor();
  ops::channel_rms_norm(k, w.norm_k, kRmsEps, k);
  Tensor kp = empty({qk, h, fw});  // (qk, h, w)
  ops::conv2d(k, w.proj_k, &w.proj_k_bias, 0, ops::PadMode::Zeros, kp, false, {}, precision);
  const float scale = 1.f / std::sqrt(float(qk / w.heads));
  ops::window_cross_attention(q, kp, features, w.heads, kWindowRatio, scale, out);  // (S, Ho', Wo')
}

}  // namespace falcon
