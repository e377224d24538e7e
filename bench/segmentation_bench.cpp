// CPU time and peak memory of the segmentation stage (conv_segm + AnyUp + masks) at the full
// Falcon Perception dimensions (D 1024, segm_out_dim 256, AnyUp qk 128 / 4 heads), with
// random weights written to a temporary safetensors file and loaded by the real loader
// (docs/segmentation.md).
//
//   segmentation_bench [--image WxH] [--max-image-size N] [--masks K] [--reps N] [--threads N]
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>

#include "core/parallel.h"
#include "core/safetensors.h"
#include "io/mask_rle.h"
#include "model/config.h"
#include "model/segmentation.h"

namespace {

using falcon::DType;
using falcon::Shape;
using falcon::Tensor;

Tensor uniform(const Shape& shape, float scale, std::mt19937& rng) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::uniform_real_distribution<float> d(-scale, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// Every tensor the segmentation stage loads, Kaiming-like scales so activations stay O(1).
std::map<std::string, Tensor> random_weights(int64_t D, int64_t S, int64_t qk, int layers) {
  std::mt19937 rng(1);
  std::map<std::string, Tensor> t;
  auto lin = [&](const Shape& s, int64_t fan_in) {
    return uniform(s, std::sqrt(3.f / float(fan_in)), rng);
  };
  t["conv_segm.weight"] = lin({S, D, 3, 3}, D * 9);
  t["conv_segm.bias"] = lin({S}, D);
  for (int j = 0; j + 1 < layers; ++j) {
    t["proj_segm.layers." + std::to_string(j) + ".weight"] = lin({D, D}, D);
    t["proj_segm.layers." + std::to_string(j) + ".bias"] = lin({D}, D);
  }
  t["proj_segm.pixel_layer.weight"] = lin({S, D}, D);
  const std::string p = "itok_upsampler.";
  auto encoder = [&](const std::string& name, const std::string& stem, const Shape& shape,
                     int64_t fan_in) {
    t[p + name + ".0." + stem] = lin(shape, fan_in);
    for (const char* b : {".1.block.", ".2.block."}) {
      t[p + name + b + "0.weight"] = uniform({qk}, 1.f, rng);
      t[p + name + b + "0.bias"] = uniform({qk}, 0.1f, rng);
      t[p + name + b + "2.weight"] = lin({qk, qk, 1, 1}, qk);
      t[p + name + b + "3.weight"] = uniform({qk}, 1.f, rng);
      t[p + name + b + "3.bias"] = uniform({qk}, 0.1f, rng);
      t[p + name + b + "5.weight"] = lin({qk, qk, 1, 1}, qk);
    }
  };
  encoder("image_encoder", "weight", {qk, 3, 1, 1}, 3);
  encoder("query_encoder", "weight", {qk, qk, 1, 1}, qk);
  encoder("key_encoder", "weight", {qk, qk, 1, 1}, qk);
  encoder("key_features_encoder", "basis", {qk, 1, 5, 5}, 25);
  encoder("aggregation", "weight", {qk, 2 * qk, 3, 3}, 2 * qk * 9);
  t[p + "rope.freqs"] = uniform({2, qk}, 3.f, rng);
  t[p + "cross_decode.conv2d.weight"] = lin({qk, qk, 3, 3}, qk * 9);
  t[p + "cross_decode.cross_attn.norm_q.weight"] = uniform({qk}, 1.f, rng);
  t[p + "cross_decode.cross_attn.norm_k.weight"] = uniform({qk}, 1.f, rng);
  t[p + "cross_decode.cross_attn.attention.in_proj_weight"] = lin({3 * qk, qk}, qk);
  t[p + "cross_decode.cross_attn.attention.in_proj_bias"] = uniform({3 * qk}, 0.1f, rng);
  return t;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  int width = 1024, height = 768, max_image_size = 1024, masks = 3, reps = 3, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--image") {
      std::sscanf(argv[i + 1], "%dx%d", &width, &height);
    } else if (a == "--max-image-size") {
      max_image_size = std::atoi(argv[i + 1]);
    } else if (a == "--masks") {
      masks = std::atoi(argv[i + 1]);
    } else if (a == "--reps") {
      reps = std::atoi(argv[i + 1]);
    } else if (a == "--threads") {
      threads = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  falcon::set_num_threads(threads);

  falcon::ModelConfig config;
  config.dim = 1024;
  config.segm_out_dim = 256;
  config.num_segm_layers = 3;
  config.perception_heads = config.do_segmentation = true;
  const std::string path =
      (std::filesystem::temp_directory_path() / "falcon_segmentation_bench.safetensors").string();
  falcon::write_safetensors(
      path, random_weights(config.dim, config.segm_out_dim, 128, config.num_segm_layers));
  const falcon::SegmentationWeights w = falcon::load_segmentation_weights(
      config, falcon::SafetensorsFile::open(path), falcon::Device::CPU);
  std::filesystem::remove(path);

  // The image as preprocessing leaves it: multiples of 16 (1024x768 stays 1024x768).
  const int64_t gh = height / 16, gw = width / 16,
                T = falcon::segmentation_canvas(max_image_size, 16);
  std::mt19937 rng(2);
  const Tensor hidden =
      uniform({gh * gw, config.dim}, 1.7f, rng);  // ~unit RMS like post-norm states
  const Tensor pixels = uniform({16 * gh, 16 * gw, 3}, 1.f, rng);
  const Tensor seg_hidden = uniform({masks, config.dim}, 1.7f, rng);
  std::printf(
      "segmentation stage: image %dx%d (patch grid %lldx%lld, canvas T=%lld), D=%d, S=%d, %d "
      "threads\n",
      width, height, (long long)gw, (long long)gh, (long long)T, config.dim, config.segm_out_dim,
      falcon::num_threads());
  std::printf("peak RSS after loading weights: %.0f MiB\n", peak_rss_mib());

  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    const falcon::SegmentationFeatures f =
        falcon::segmentation_features(w, hidden, gh, gw, pixels, T);
    const double features_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const Tensor embeds = falcon::segmentation_embeddings(w, seg_hidden);
    const Tensor logits = falcon::mask_logits(f.hr, embeds);
    const Tensor bin = falcon::binary_masks(logits, height, width);
    int64_t rle_bytes = 0;
    for (int k = 0; k < masks; ++k) {
      rle_bytes += int64_t(falcon::io::encode_coco_rle(
                               bin.data<uint8_t>() + int64_t(k) * height * width, height, width)
                               .size());
    }
    const double masks_s = seconds_since(t0);
    std::printf(
        "rep %d: features (conv_segm + AnyUp) %.3f s, %d masks (embed, logits, resize, RLE) %.3f "
        "s, "
        "total %.3f s; peak RSS %.0f MiB (RLE %lld bytes)\n",
        r, features_s, masks, masks_s, features_s + masks_s, peak_rss_mib(), (long long)rle_bytes);
  }
  return 0;
}
