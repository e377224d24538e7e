#include "model/random_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"

namespace falcon {

ModelConfig published_config(std::string_view variant) {
  ModelConfig c;
  c.vocab_size = 65536;
  c.rope_theta = 10000.f;
  c.norm_eps = 1e-5f;
  c.max_seq_len = 8192;
  c.coord_enc_dim = c.size_enc_dim = 512;
  c.coord_dec_dim = c.size_dec_dim = 8192;
  c.coord_out_dim = c.size_out_dim = 2048;
  c.segm_out_dim = 256;
  c.num_segm_layers = 3;
  c.n_heads = 16;
  c.n_kv_heads = 8;
  if (variant == "perception") {
    c.variant = Variant::Perception;
    c.architecture = "FalconPerceptionForSegmentation";
    c.dim = 1024, c.n_layers = 28, c.head_dim = 128, c.ffn_dim = 3072;
    c.perception_heads = c.do_segmentation = true;
  } else if (variant == "perception-300m") {
    c.variant = Variant::Perception300M;
    c.architecture = "FalconPerceptionForCausalLM";
    c.dim = 768, c.n_layers = 22, c.head_dim = 64, c.ffn_dim = 2304;
    c.perception_heads = true;
    c.do_segmentation = false;
  } else if (variant == "ocr") {
    c.variant = Variant::Ocr;
    c.architecture = "FalconOCRForCausalLM";
    c.dim = 768, c.n_layers = 22, c.head_dim = 64, c.ffn_dim = 2304;
    c.perception_heads = c.do_segmentation = false;
  } else {
    throw InvalidArgument("unknown variant '" + std::string(variant) + "' (perception, perception-300m, ocr)");
  }
  return c;
}

namespace {

struct Entry {
  std::string name;
  Shape shape;
  float scale;  // values uniform in [-scale, scale], or exactly `scale` when constant
  bool constant = false;
};

std::vector<Entry> tensor_list(const ModelConfig& c) {
  const int64_t D = c.dim, H = c.n_heads, hd = c.head_dim, F = c.ffn_dim, V = c.vocab_size;
  auto lin = [](int64_t in) { return float(1.0 / std::sqrt(double(in))); };
  std::vector<Entry> t = {
      {"tok_embeddings.weight", {V, D}, 1.0f},
      {"img_projector.weight", {D, c.patch_dim()}, lin(c.patch_dim())},
      {"norm.weight", {D}, 1.0f, true},
      {"output.weight", {V, D}, lin(D)},
      {"freqs_cis_golden", {H, hd / 4, 2}, 3.0f},
  };
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "layers." + std::to_string(l);
    t.push_back({p + ".attention.wqkv.weight", {int64_t(c.qkv_dim()), D}, lin(D)});
    t.push_back({p + ".attention.wo.weight", {D, H * hd}, lin(H * hd)});
    t.push_back({p + ".attention.sinks", {H}, 1.0f});
    t.push_back({p + ".feed_forward.w13.weight", {2 * F, D}, lin(D)});
    t.push_back({p + ".feed_forward.w2.weight", {D, F}, lin(F)});
  }
  if (c.perception_heads) {
    for (const char* head : {"coord", "size"}) {
      const std::string h = head;
      const int64_t enc = h == "coord" ? c.coord_enc_dim : c.size_enc_dim;
      const int64_t dec = h == "coord" ? c.coord_dec_dim : c.size_dec_dim;
      const int64_t out = h == "coord" ? c.coord_out_dim : c.size_out_dim;
      t.push_back({h + "_encoder.embed.weight", {enc / 2, 2}, 1.0f});
      t.push_back({h + "_encoder.transform.weight", {D, enc}, lin(enc)});
      t.push_back({h + "_decoder.w1.weight", {dec, D}, lin(D)});
      t.push_back({h + "_decoder.w2.weight", {out, dec}, lin(dec)});
    }
  }
  if (c.do_segmentation) {
    const int64_t S = c.segm_out_dim;
    t.push_back({"conv_segm.weight", {S, D, 3, 3}, lin(D * 9)});
    t.push_back({"conv_segm.bias", {S}, 0.1f});
    for (int j = 0; j + 1 < c.num_segm_layers; ++j) {
      t.push_back({"proj_segm.layers." + std::to_string(j) + ".weight", {D, D}, lin(D)});
      t.push_back({"proj_segm.layers." + std::to_string(j) + ".bias", {D}, 0.1f});
    }
    t.push_back({"proj_segm.pixel_layer.weight", {S, D}, lin(D)});
    // The AnyUp upsampler: its dimensions do not depend on the model's.
    const std::string u = "itok_upsampler.";
    auto resblock = [&](const std::string& p) {
      t.push_back({p + ".block.0.weight", {128}, 1.0f, true});
      t.push_back({p + ".block.0.bias", {128}, 0.0f, true});
      t.push_back({p + ".block.2.weight", {128, 128, 1, 1}, lin(128)});
      t.push_back({p + ".block.3.weight", {128}, 1.0f, true});
      t.push_back({p + ".block.3.bias", {128}, 0.0f, true});
      t.push_back({p + ".block.5.weight", {128, 128, 1, 1}, lin(128)});
    };
    t.push_back({u + "image_encoder.0.weight", {128, 3, 1, 1}, lin(3)});
    resblock(u + "image_encoder.1");
    resblock(u + "image_encoder.2");
    for (const char* enc : {"key_encoder", "query_encoder"}) {
      t.push_back({u + enc + ".0.weight", {128, 128, 1, 1}, lin(128)});
      resblock(u + enc + ".1");
      resblock(u + enc + ".2");
    }
    t.push_back({u + "key_features_encoder.0.basis", {128, 1, 5, 5}, 0.2f});
    resblock(u + "key_features_encoder.1");
    resblock(u + "key_features_encoder.2");
    t.push_back({u + "aggregation.0.weight", {128, 256, 3, 3}, lin(256 * 9)});
    resblock(u + "aggregation.1");
    resblock(u + "aggregation.2");
    t.push_back({u + "cross_decode.conv2d.weight", {128, 128, 3, 3}, lin(128 * 9)});
    t.push_back({u + "cross_decode.cross_attn.attention.in_proj_weight", {384, 128}, lin(128)});
    t.push_back({u + "cross_decode.cross_attn.attention.in_proj_bias", {384}, 0.02f});
    t.push_back({u + "cross_decode.cross_attn.norm_q.weight", {128}, 1.0f, true});
    t.push_back({u + "cross_decode.cross_attn.norm_k.weight", {128}, 1.0f, true});
    t.push_back({u + "rope.freqs", {2, 128}, 10.0f});
  }
  return t;
}

// SplitMix64: a fast, well-mixed generator so 600M values take seconds.
inline uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

nlohmann::json config_json(const ModelConfig& c, DType dtype) {
  nlohmann::json j = {{"architectures", {c.architecture}},
                      {"model_type", c.variant == Variant::Ocr ? "falcon_ocr" : "falcon_perception"},
                      {"dim", c.dim}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads}, {"head_dim", c.head_dim},
                      {"n_kv_heads", c.n_kv_heads}, {"vocab_size", c.vocab_size}, {"ffn_dim", c.ffn_dim},
                      {"norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta}, {"max_seq_len", c.max_seq_len},
                      {"channel_size", 3}, {"spatial_patch_size", 16}, {"temporal_patch_size", 1},
                      {"coord_enc_dim", c.coord_enc_dim}, {"coord_dec_dim", c.coord_dec_dim},
                      {"coord_out_dim", c.coord_out_dim}, {"size_enc_dim", c.size_enc_dim},
                      {"size_dec_dim", c.size_dec_dim}, {"size_out_dim", c.size_out_dim},
                      {"perception_heads", c.perception_heads}, {"do_segmentation", c.do_segmentation},
                      {"segm_out_dim", c.segm_out_dim}, {"num_segm_layers", c.num_segm_layers},
                      {"torch_dtype", dtype == DType::F32 ? "float32" : dtype == DType::BF16 ? "bfloat16" : "float16"},
                      {"eos_id", 11}, {"img_id", 227}, {"img_row_sep_id", 228}, {"img_start_id", 229},
                      {"img_end_id", 230}, {"coord_token_id", 240}, {"size_token_id", 241}, {"seg_token_id", 262},
                      {"image_cls_token_id", 244}, {"image_reg_1_token_id", 245}, {"image_reg_2_token_id", 246},
                      {"image_reg_3_token_id", 247}, {"image_reg_4_token_id", 248}};
  return j;
}

}  // namespace

void write_random_model(const ModelConfig& config, DType dtype, const std::string& tokenizer_dir,
                        const std::string& out_dir, uint64_t seed, const std::function<void(double)>& progress) {
  namespace fs = std::filesystem;
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16) {
    throw InvalidArgument("random models are written as f32, bf16 or f16");
  }
  fs::create_directories(out_dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    const fs::path src = fs::path(tokenizer_dir) / f;
    if (!fs::exists(src)) throw FileError(src.string() + ": missing (--tokenizer-from must hold the tokenizer files)");
    const fs::path dst = fs::path(out_dir) / f;
    fs::remove(dst);  // the source may be read-only, and a copy keeps its permissions
    fs::copy_file(src, dst);
    fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);
  }
  {
    std::ofstream cfg(fs::path(out_dir) / "config.json");
    cfg << config_json(config, dtype).dump(2) << "\n";
    if (!cfg) throw FileError(out_dir + "/config.json: cannot write");
  }

  const std::vector<Entry> entries = tensor_list(config);
  const size_t esize = row_bytes(dtype, 1);
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0, total = 0;
  for (const Entry& e : entries) {
    // The 1-D params of the head stay F32 in the real exports only for freqs_cis_golden.
    const size_t bytes = size_t(shape_numel(e.shape)) * (e.name == "freqs_cis_golden" ? 4 : esize);
    header[e.name] = {{"dtype", e.name == "freqs_cis_golden" ? "F32" : dtype_name(dtype)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  total = offset;
  std::string text = header.dump();
  while ((text.size() + 8) % 8) text.push_back(' ');
  const fs::path path = fs::path(out_dir) / "model.safetensors";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw FileError(path.string() + ": cannot write");
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), std::streamsize(text.size()));

  size_t written = 0;
  uint64_t stream = seed * 0x100000001b3ull + 1;
  std::vector<unsigned char> buf;
  for (const Entry& e : entries) {
    const bool f32 = e.name == "freqs_cis_golden" || dtype == DType::F32;
    const int64_t count = shape_numel(e.shape);
    buf.resize(size_t(count) * (f32 ? 4 : 2));
    const uint64_t base = splitmix(stream++);
    parallel_for(count, 1 << 16, [&](int64_t b, int64_t end) {
      for (int64_t i = b; i < end; ++i) {
        float v = e.scale;
        if (!e.constant) {
          const uint64_t r = splitmix(base + uint64_t(i));
          v = (float(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * e.scale;
        }
        if (f32) {
          std::memcpy(&buf[size_t(i) * 4], &v, 4);
        } else {
          const uint16_t h = dtype == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
          std::memcpy(&buf[size_t(i) * 2], &h, 2);
        }
      }
    });
    out.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
    written += buf.size();
    if (progress) progress(double(written) / double(total));
  }
  if (!out) throw FileError(path.string() + ": write failed (disk full?)");
}

}  // namespace falcon
