// The segmentation stage against the reference fixtures (every perception-tiny case with
// segmentation tensors): conv_segm, AnyUp, proj_segm, mask logits and binary masks.
#include "model/segmentation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "core/safetensors.h"
#include "model/config.h"
#include "test_support.h"

namespace falcon {
namespace {

namespace fs = std::filesystem;

std::string model_dir() {
  return test::fixtures_dir() + "/perception-tiny/model";
}

// Cases whose expected.safetensors carries the segmentation tensors.
std::vector<std::string> segmentation_cases() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir() + "/perception-tiny/cases")) {
    const std::string path = e.path().string() + "/expected.safetensors";
    if (fs::exists(path) && SafetensorsFile::open(path).contains("lr_features_conv"))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Model {
  ModelConfig config;
  SegmentationWeights weights;
  int64_t img_id = 0, seg_id = 0;
};

const Model& model() {
  static const Model m = [] {
    Model r;
    r.config = load_model_config(model_dir());
    r.weights = load_segmentation_weights(
        r.config, SafetensorsFile::open(model_dir() + "/model.safetensors"), Device::CPU);
    const nlohmann::json cfg = read_json_file(model_dir() + "/config.json");
    r.img_id = cfg.at("img_id").get<int64_t>();
    r.seg_id = cfg.at("seg_token_id").get<int64_t>();
    return r;
  }();
  return m;
}

// An owned F32 copy of a fixture tensor (the mapping may go away with the file object).
Tensor expected(const SafetensorsFile& f, const std::string& name) {
  return f.view(name).clone();
}

struct Case {
  std::string name;
  SafetensorsFile file;
  nlohmann::json json;
  int64_t gh = 0, gw = 0;
  Tensor img_hidden;  // (gh * gw, D)

  explicit Case(const std::string& dir)
      : name(fs::path(dir).filename().string()),
        file(SafetensorsFile::open(dir + "/expected.safetensors")),
        json(read_json_file(dir + "/expected.json")) {
    const Tensor pixels = file.view("pixel_values");
    gh = pixels.dim(0) / 16;
    gw = pixels.dim(1) / 16;
    // The img tokens (input_ids == img_id) are one contiguous run, row-major over the grid.
    const Tensor ids = file.view("input_ids");
    int64_t first = -1, count = 0;
    for (int64_t i = 0; i < ids.numel(); ++i) {
      if (ids.data<int64_t>()[i] == model().img_id) {
        if (first < 0) first = i;
        ++count;
      }
    }
    EXPECT_EQ(count, gh * gw) << name;
    img_hidden = file.view("prefill_hidden").rows(first, first + count).clone();
  }
  // The hidden states that chose the <|seg|> tokens, [K, D]: step k's token was chosen from
  // the state before it, step_hidden[k - 1], or the last prompt row for k = 0.
  Tensor seg_hidden() const {
    const Tensor prefill = file.view("prefill_hidden"), steps = file.view("step_hidden");
    const auto tokens = json.at("tokens").get<std::vector<int64_t>>();
    std::vector<Tensor> rows;
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (tokens[k] != model().seg_id) continue;
      rows.push_back(k == 0 ? prefill.rows(prefill.dim(0) - 1, prefill.dim(0))
                            : steps.rows(int64_t(k) - 1, int64_t(k)));
    }
    Tensor hidden = Tensor::empty({int64_t(rows.size()), prefill.dim(1)}, DType::F32);
    for (size_t i = 0; i < rows.size(); ++i)
      hidden.rows(int64_t(i), int64_t(i) + 1).copy_from(rows[i]);
    return hidden;
  }
  // T = ceil(max_image_size / 16) from the case's request.
  int64_t canvas() const {
    const nlohmann::json request =
        read_json_file(fs::path(file.path()).parent_path().string() + "/case.json");
    return segmentation_canvas(request.at("max_image_size").get<int64_t>(), 16);
  }
};

void report(const std::string& c, const std::string& what, double value) {
  std::cout << "[ metric   ] " << c << " " << what << " = " << value << "\n";
}

TEST(Segmentation, FixturesHaveSegmentationCases) {
  EXPECT_GE(segmentation_cases().size(), 2u);
}

TEST(Segmentation, LowResFeaturesFromPrefillHidden) {
  for (const std::string& dir : segmentation_cases()) {
    Case c(dir);
    SCOPED_TRACE(c.name);
    const SegmentationFeatures f = segmentation_features(model().weights, c.img_hidden, c.gh, c.gw,
                                                         c.file.view("pixel_values"), c.canvas());
    const double lr = test::rel_l2(f.lr, expected(c.file, "lr_features_conv"));
    const double hr = test::rel_l2(f.hr, expected(c.file, "hr_features"));
    report(c.name, "lr_features_conv rel_l2", lr);
    report(c.name, "hr_features (end to end) rel_l2", hr);
    EXPECT_LT(lr, 1e-3);
    EXPECT_LT(hr, 1e-3);
  }
}

TEST(Segmentation, AnyUpFromReferenceLowResFeatures) {
  for (const std::string& dir : segmentation_cases()) {
    Case c(dir);
    SCOPED_TRACE(c.name);
    const Tensor hr = upsample_segmentation_features(
        model().weights, expected(c.file, "lr_features_conv"), c.file.view("pixel_values"));
    const Tensor want = expected(c.file, "hr_features");
    ASSERT_EQ(hr.shape(), want.shape());
    const double err = test::rel_l2(hr, want);
    report(c.name, "hr_features (from reference lr) rel_l2", err);
    EXPECT_LT(err, 1e-3);
  }
}

TEST(Segmentation, EmbeddingsFromTheHiddenStateThatChoseSeg) {
  for (const std::string& dir : segmentation_cases()) {
    Case c(dir);
    SCOPED_TRACE(c.name);
    if (!c.file.contains("segm_embeds")) continue;  // greedy run that produced no <|seg|>
    const Tensor want = expected(c.file, "segm_embeds");
    const Tensor hidden = c.seg_hidden();
    ASSERT_EQ(hidden.dim(0), want.dim(0));
    const double err = test::rel_l2(segmentation_embeddings(model().weights, hidden), want);
    report(c.name, "segm_embeds rel_l2", err);
    EXPECT_LT(err, 1e-4);
  }
}

TEST(Segmentation, MaskLogitsAndMasks) {
  for (const std::string& dir : segmentation_cases()) {
    Case c(dir);
    SCOPED_TRACE(c.name);
    if (!c.file.contains("mask_logits")) continue;  // greedy run that produced no <|seg|>
    const Tensor want_logits = expected(c.file, "mask_logits");
    const double err = test::rel_l2(
        mask_logits(expected(c.file, "hr_features"), expected(c.file, "segm_embeds")), want_logits);
    report(c.name, "mask_logits (reference hr, embeds) rel_l2", err);
    EXPECT_LT(err, 1e-3);
    // End to end: our features and embeddings from the fixture's hidden states.
    const SegmentationFeatures f = segmentation_features(model().weights, c.img_hidden, c.gh, c.gw,
                                                         c.file.view("pixel_values"), c.canvas());
    const Tensor logits =
        mask_logits(f.hr, segmentation_embeddings(model().weights, c.seg_hidden()));
    const double err_e2e = test::rel_l2(logits, want_logits);
    report(c.name, "mask_logits (end to end) rel_l2", err_e2e);
    EXPECT_LT(err_e2e, 1e-3);

    const Tensor want = c.file.view("masks");  // (K, H0, W0) U8
    const auto hw = c.json.at("orig_hw").get<std::vector<int64_t>>();
    ASSERT_EQ(want.shape(), (Shape{want_logits.dim(0), hw[0], hw[1]}));
    // From the reference logits (isolates resize + threshold) and from ours.
    for (const Tensor* src : {&want_logits, &logits}) {
      const Tensor masks = binary_masks(*src, hw[0], hw[1]);
      int64_t equal = 0, area = 0;
      for (int64_t i = 0; i < want.numel(); ++i) {
        equal += masks.data<uint8_t>()[i] == want.data<uint8_t>()[i];
        area += masks.data<uint8_t>()[i];
      }
      const double frac = double(equal) / double(want.numel());
      report(c.name,
             src == &want_logits ? "masks equal (reference logits)" : "masks equal (end to end)",
             frac);
      EXPECT_GE(frac, 0.999);
      int64_t want_area = 0;
      for (const auto& a : c.json.at("mask_areas")) want_area += a.get<int64_t>();
      EXPECT_NEAR(double(area), double(want_area), 0.001 * double(want.numel()));
    }
  }
}

TEST(Segmentation, LoaderNamesAMisshapenTensor) {
  // A file whose conv_segm has the wrong shape: the error names the tensor.
  const SafetensorsFile real = SafetensorsFile::open(model_dir() + "/model.safetensors");
  std::map<std::string, Tensor> tensors;
  for (const std::string& n : real.names()) tensors[n] = real.view(n);
  tensors["itok_upsampler.cross_decode.conv2d.weight"] =
      Tensor::zeros({128, 128, 1, 1}, DType::F32);
  const std::string path = (fs::temp_directory_path() / "falcon_seg_bad.safetensors").string();
  write_safetensors(path, tensors);
  try {
    load_segmentation_weights(model().config, SafetensorsFile::open(path), Device::CPU);
    FAIL() << "no error";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("itok_upsampler.cross_decode.conv2d.weight"),
              std::string::npos)
        << e.what();
  }
  fs::remove(path);
}

}  // namespace
}  // namespace falcon
