// config.json of a Falcon Perception / Falcon OCR export, and the variant it describes.
#pragma once

#include <optional>
#include <string>

namespace falcon {

enum class Variant { Perception, Perception300M, Ocr };
const char* variant_name(Variant v);  // "perception" | "perception-300m" | "ocr"

struct ModelConfig {
  Variant variant = Variant::Perception;
  std::string architecture;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int head_dim = 0;
  int n_kv_heads = 0;
  int vocab_size = 0;
  int ffn_dim = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  int max_seq_len = 0;
  int channel_size = 3;
  int spatial_patch_size = 16;
  int temporal_patch_size = 1;
  bool perception_heads = false;
  bool do_segmentation = false;
  int coord_enc_dim = 0, coord_dec_dim = 0, coord_out_dim = 0;
  int size_enc_dim = 0, size_dec_dim = 0, size_out_dim = 0;
  int segm_out_dim = 0;
  int num_segm_layers = 0;
  std::string torch_dtype;
  // Token ids config.json may carry; the tokenizer files are the authority.
  std::optional<int> eos_id, img_id, img_start_id, img_end_id, coord_token_id, size_token_id, seg_token_id,
      image_cls_token_id, image_reg_1_token_id;

  int patch_dim() const { return temporal_patch_size * spatial_patch_size * spatial_patch_size * channel_size; }
  int qkv_dim() const { return (n_heads + 2 * n_kv_heads) * head_dim; }
};

// Parses and validates <dir>/config.json. Throws FileError naming the file and field.
ModelConfig load_model_config(const std::string& model_dir);

}  // namespace falcon
