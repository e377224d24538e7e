#include "model/weights.h"

#include <string>

#include "core/error.h"
#include "ops/convert.h"
#include "ops/linear.h"

namespace falcon {

Tensor checked_view(const SafetensorsFile& file, const std::string& name, const Shape& shape) {
  const TensorInfo& info = file.info(name);  // throws "missing tensor"
  if (info.shape != shape) {
    throw FileError(file.path() + ": tensor '" + name + "' has shape " + shape_str(info.shape) + ", expected " +
                    shape_str(shape) + " for this config");
  }
  if (!is_float(info.dtype)) {
    throw FileError(file.path() + ": tensor '" + name + "' has dtype " + dtype_name(info.dtype) + ", expected a float type");
  }
  return file.view(name);
}

Tensor load_f32(const SafetensorsFile& file, const std::string& name, const Shape& shape, Device device) {
  Tensor src = checked_view(file, name, shape);
  Tensor f32 = Tensor::empty(shape, DType::F32);
  ops::convert(src, f32);
  return device == Device::CPU ? f32 : f32.to(device);
}

namespace {

Tensor load_linear(const SafetensorsFile& file, const std::string& name, const Shape& shape, Device device,
                   DType dtype) {
  return ops::prepare_linear_weight(checked_view(file, name, shape), dtype, device);
}

BoxHeadWeights load_box_head(const SafetensorsFile& f, const std::string& prefix, int dim, int enc, int dec, int out,
                             Device device, DType dtype) {
  BoxHeadWeights h;
  h.embed = load_f32(f, prefix + "_encoder.embed.weight", {enc / 2, 2}, Device::CPU);
  h.transform = load_linear(f, prefix + "_encoder.transform.weight", {dim, enc}, device, dtype);
  h.w1 = load_linear(f, prefix + "_decoder.w1.weight", {dec, dim}, device, dtype);
  h.w2 = load_linear(f, prefix + "_decoder.w2.weight", {out, dec}, device, dtype);
  return h;
}

}  // namespace

ModelWeights load_model_weights(const ModelConfig& c, const SafetensorsFile& file, Device device, DType linear_dtype,
                                const LoadProgress& progress) {
  ModelWeights w;
  w.linear_dtype = linear_dtype;
  w.file_dtype = file.info("tok_embeddings.weight").dtype;
  for (const std::string& name : file.names()) w.parameter_count += shape_numel(file.info(name).shape);

  const int D = c.dim, H = c.n_heads, hd = c.head_dim, F = c.ffn_dim;
  Tensor emb = checked_view(file, "tok_embeddings.weight", {c.vocab_size, D});
  w.tok_embeddings = device == Device::CPU ? emb : emb.to(device);
  w.img_projector = load_linear(file, "img_projector.weight", {D, c.patch_dim()}, device, linear_dtype);
  w.golden = load_f32(file, "freqs_cis_golden", {H, hd / 4, 2}, device);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l);
    LayerWeights lw;
    lw.wqkv = load_linear(file, p + ".attention.wqkv.weight", {c.qkv_dim(), D}, device, linear_dtype);
    lw.wo = load_linear(file, p + ".attention.wo.weight", {D, H * hd}, device, linear_dtype);
    lw.sinks = load_f32(file, p + ".attention.sinks", {H}, device);
    lw.w13 = load_linear(file, p + ".feed_forward.w13.weight", {2 * F, D}, device, linear_dtype);
    lw.w2 = load_linear(file, p + ".feed_forward.w2.weight", {D, F}, device, linear_dtype);
    w.layers.push_back(std::move(lw));
    if (progress) progress("weights", double(l + 1) / double(c.n_layers + 1));
  }
  w.norm = load_f32(file, "norm.weight", {D}, device);
  w.output = load_linear(file, "output.weight", {c.vocab_size, D}, device, linear_dtype);
  if (c.perception_heads) {
    w.coord = load_box_head(file, "coord", D, c.coord_enc_dim, c.coord_dec_dim, c.coord_out_dim, device, linear_dtype);
    w.size = load_box_head(file, "size", D, c.size_enc_dim, c.size_dec_dim, c.size_out_dim, device, linear_dtype);
  }
  if (progress) progress("weights", 1.0);
  return w;
}

}  // namespace falcon
