#include "model/config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"

namespace falcon {

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::Perception: return "perception";
    case Variant::Perception300M: return "perception-300m";
    case Variant::Ocr: return "ocr";
  }
  return "?";
}

namespace {

struct Reader {
  const nlohmann::json& j;
  std::string path;

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw FileError(path + ": field '" + field + "' " + what);
  }
  int integer(const char* field, std::optional<int> fallback = std::nullopt) const {
    if (!j.contains(field)) {
      if (fallback) return *fallback;
      fail(field, "is missing");
    }
    if (!j[field].is_number_integer()) fail(field, "must be an integer");
    const int64_t v = j[field].get<int64_t>();
    if (v < 0 || v > (int64_t(1) << 30)) fail(field, "is out of range");
    return int(v);
  }
  std::optional<int> optional_integer(const char* field) const {
    if (!j.contains(field) || j[field].is_null()) return std::nullopt;
    return integer(field);
  }
  float number(const char* field, float fallback) const {
    if (!j.contains(field)) return fallback;
    if (!j[field].is_number()) fail(field, "must be a number");
    return j[field].get<float>();
  }
  bool boolean(const char* field, bool fallback) const {
    if (!j.contains(field)) return fallback;
    if (!j[field].is_boolean()) fail(field, "must be true or false");
    return j[field].get<bool>();
  }
};

}  // namespace

ModelConfig load_model_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  const nlohmann::json j = read_json_file(path);
  if (!j.is_object()) throw FileError(path + ": not a JSON object");
  const Reader r{j, path};
  ModelConfig c;
  bool ocr_arch = false;
  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"]) {
      if (!a.is_string()) continue;
      if (c.architecture.empty()) c.architecture = a.get<std::string>();
      if (a.get<std::string>() == "FalconOCRForCausalLM") ocr_arch = true;
    }
  }
  c.dim = r.integer("dim");
  c.n_layers = r.integer("n_layers");
  c.n_heads = r.integer("n_heads");
  c.head_dim = r.integer("head_dim", c.n_heads ? c.dim / c.n_heads : 0);
  c.n_kv_heads = r.integer("n_kv_heads", c.n_heads);
  c.vocab_size = r.integer("vocab_size");
  c.ffn_dim = r.integer("ffn_dim");
  c.norm_eps = r.number("norm_eps", 1e-5f);
  c.rope_theta = r.number("rope_theta", 10000.f);
  c.max_seq_len = r.integer("max_seq_len", 8192);
  c.channel_size = r.integer("channel_size", 3);
  c.spatial_patch_size = r.integer("spatial_patch_size", 16);
  c.temporal_patch_size = r.integer("temporal_patch_size", 1);
  c.perception_heads = r.boolean("perception_heads", !ocr_arch);
  c.do_segmentation = r.boolean("do_segmentation", c.perception_heads);
  c.coord_enc_dim = r.integer("coord_enc_dim", 512);
  c.coord_dec_dim = r.integer("coord_dec_dim", 8192);
  c.coord_out_dim = r.integer("coord_out_dim", 2048);
  c.size_enc_dim = r.integer("size_enc_dim", 512);
  c.size_dec_dim = r.integer("size_dec_dim", 8192);
  c.size_out_dim = r.integer("size_out_dim", 2048);
  c.segm_out_dim = r.integer("segm_out_dim", 256);
  c.num_segm_layers = r.integer("num_segm_layers", 3);
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
  c.eos_id = r.optional_integer("eos_id");
  c.img_id = r.optional_integer("img_id");
  c.img_start_id = r.optional_integer("img_start_id");
  c.img_end_id = r.optional_integer("img_end_id");
  c.coord_token_id = r.optional_integer("coord_token_id");
  c.size_token_id = r.optional_integer("size_token_id");
  c.seg_token_id = r.optional_integer("seg_token_id");
  c.image_cls_token_id = r.optional_integer("image_cls_token_id");
  c.image_reg_1_token_id = r.optional_integer("image_reg_1_token_id");

  if (ocr_arch) {
    c.variant = Variant::Ocr;
    c.perception_heads = false;
    c.do_segmentation = false;
  } else if (!c.do_segmentation) {
    c.variant = Variant::Perception300M;
  } else {
    c.variant = Variant::Perception;
  }

  auto require = [&](bool ok, const char* field, const std::string& what) {
    if (!ok) r.fail(field, what);
  };
  require(c.dim > 0, "dim", "must be positive");
  require(c.n_layers > 0, "n_layers", "must be positive");
  require(c.n_heads > 0, "n_heads", "must be positive");
  require(c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0, "n_kv_heads", "must divide n_heads");
  require(c.head_dim > 0 && c.head_dim % 4 == 0, "head_dim", "must be a positive multiple of 4 (3-D RoPE)");
  require(c.vocab_size > 0, "vocab_size", "must be positive");
  require(c.ffn_dim > 0, "ffn_dim", "must be positive");
  require(c.max_seq_len > 0, "max_seq_len", "must be positive");
  require(c.channel_size == 3, "channel_size", "must be 3 (RGB)");
  require(c.temporal_patch_size == 1, "temporal_patch_size", "must be 1 (single images)");
  require(c.spatial_patch_size == 16, "spatial_patch_size", "must be 16");
  require(c.norm_eps > 0, "norm_eps", "must be positive");
  if (c.perception_heads) {
    require(c.coord_out_dim > 0 && c.coord_out_dim % 2 == 0, "coord_out_dim", "must be even (x and y bins)");
    require(c.size_out_dim > 0 && c.size_out_dim % 2 == 0, "size_out_dim", "must be even (h and w bins)");
    require(c.coord_enc_dim > 0 && c.coord_enc_dim % 2 == 0, "coord_enc_dim", "must be even");
    require(c.size_enc_dim > 0 && c.size_enc_dim % 2 == 0, "size_enc_dim", "must be even");
  }
  if (c.do_segmentation) {
    require(c.num_segm_layers >= 1, "num_segm_layers", "must be at least 1");
    require(c.segm_out_dim > 0, "segm_out_dim", "must be positive");
  }
  return c;
}

}  // namespace falcon
