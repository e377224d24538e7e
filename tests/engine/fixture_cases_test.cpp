// Every reference fixture case, run through the engine with --dump semantics and compared
// tensor by tensor with the reference's outputs at the fixtures' tolerances.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "core/safetensors.h"
#include "falcon/engine.h"
#include "test_support.h"

namespace falcon {
namespace {

namespace fs = std::filesystem;

struct CaseParam {
  std::string model;  // "perception-tiny" | "ocr-tiny"
  std::string name;
};

void PrintTo(const CaseParam& p, std::ostream* os) { *os << p.model << "/" << p.name; }

std::vector<CaseParam> all_cases() {
  std::vector<CaseParam> out;
  for (const char* model : {"perception-tiny", "ocr-tiny"}) {
    const fs::path dir = fs::path(test::fixtures_dir()) / model / "cases";
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& n : names) out.push_back({model, n});
  }
  return out;
}

// A dumped tensor as doubles, whatever its stored dtype.
std::vector<double> values(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (t.dtype()) {
      case DType::F32: v[size_t(i)] = t.data<float>()[i]; break;
      case DType::I64: v[size_t(i)] = double(t.data<int64_t>()[i]); break;
      case DType::I32: v[size_t(i)] = t.data<int32_t>()[i]; break;
      case DType::U8: v[size_t(i)] = t.data<uint8_t>()[i]; break;
      default: ADD_FAILURE() << "unexpected dtype " << dtype_name(t.dtype());
    }
  }
  return v;
}

double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / (den > 0 ? std::sqrt(den) : 1.0);
}

// FALCON_TEST_DEVICE=cuda runs the cases on the GPU in the fp32 parity mode (f32 weights and
// activations), where logits and hidden states must agree within 1e-3 relative L2 (the
// issue's CUDA bar) instead of the CPU's 1e-4; tokens, boxes and masks as on the CPU.
std::string test_device() {
  const char* d = std::getenv("FALCON_TEST_DEVICE");
  return d && *d ? std::string(d) : std::string("cpu");
}

class FixtureCase : public ::testing::TestWithParam<CaseParam> {};

TEST_P(FixtureCase, MatchesReference) {
  const CaseParam& p = GetParam();
  const fs::path root = fs::path(test::fixtures_dir()) / p.model;
  const fs::path case_dir = root / "cases" / p.name;
  const nlohmann::json c = read_json_file((case_dir / "case.json").string());
  const nlohmann::json meta = read_json_file((case_dir / "expected.json").string());

  EngineOptions opts;
  opts.model_dir = (root / "model").string();
  const bool on_gpu = test_device() != "cpu";
  if (on_gpu) {
    opts.device = test_device();
    opts.weight_dtype = "f32";
  }
  const double model_tol = on_gpu ? 1e-3 : 1e-4;
  const std::unique_ptr<Engine> engine = Engine::load(opts);

  Request req;
  req.task = task_from_name(c["task"].get<std::string>());
  if (c.contains("query")) req.query = c["query"].get<std::string>();
  req.image_bytes = read_binary_file((root / "images" / c["image"].get<std::string>()).string());
  req.min_image_size = c["min_image_size"].get<int>();
  req.max_image_size = c["max_image_size"].get<int>();
  if (c.contains("forced_tokens_str")) {
    for (const auto& t : c["forced_tokens_str"]) {
      const auto id = engine->token_id(t.get<std::string>());
      ASSERT_TRUE(id.has_value()) << t;
      req.sampling.forced_tokens.push_back(*id);
    }
  } else {
    req.sampling.max_new_tokens = c["greedy_steps"].get<int>();
  }
  req.dump_path = ::testing::TempDir() + p.model + "-" + p.name + ".safetensors";
  const Result result = engine->run(req);

  const SafetensorsFile got = SafetensorsFile::open(req.dump_path);
  const SafetensorsFile want = SafetensorsFile::open((case_dir / "expected.safetensors").string());

  // Greedy cases compare up to the first near-tie of the reference's top two logits.
  const std::vector<int> want_tokens = meta["tokens"].get<std::vector<int>>();
  size_t n_steps = want_tokens.size();
  if (c.contains("greedy_steps")) {
    const auto margins = meta["top2_margins"].get<std::vector<double>>();
    for (size_t i = 0; i < margins.size(); ++i) {
      if (margins[i] < 0.01) {
        n_steps = i;
        break;
      }
    }
  }
  ASSERT_GE(result.tokens.size(), n_steps);
  EXPECT_EQ(std::vector<int>(result.tokens.begin(), result.tokens.begin() + long(n_steps)),
            std::vector<int>(want_tokens.begin(), want_tokens.begin() + long(n_steps)));
  EXPECT_EQ(result.input_tokens, meta["n_input_tokens"].get<int>());
  EXPECT_EQ(result.image_height, meta["orig_hw"][0].get<int>());
  EXPECT_EQ(result.image_width, meta["orig_hw"][1].get<int>());

  struct Check {
    const char* name;
    double tol;
    bool relative;
    bool per_step;
  };
  const Check checks[] = {
      {"input_ids", 0, false, false},          {"pos_t", 0, false, false},
      {"pos_hw", 1e-6, false, false},          {"pixel_values", 1e-6, false, false},
      {"prefill_logits_last", model_tol, true, false}, {"prefill_hidden", model_tol, true, false},
      {"step_logits", model_tol, true, true},       {"step_hidden", model_tol, true, true},
      {"lr_features_conv", 1e-3, true, false},      {"hr_features", 1e-3, true, false},
      {"segm_embeds", model_tol, true, false},      {"mask_logits", 1e-3, true, false},
  };
  for (const Check& ch : checks) {
    if (!want.contains(ch.name)) continue;
    ASSERT_TRUE(got.contains(ch.name)) << "the dump lacks " << ch.name;
    Tensor w = want.view(ch.name), g = got.view(ch.name);
    Shape ws = w.shape();
    if (ch.per_step) {
      ws[0] = int64_t(n_steps);
      ASSERT_GE(g.dim(0), int64_t(n_steps)) << ch.name;
      w = w.rows(0, int64_t(n_steps));
      g = g.rows(0, int64_t(n_steps));
    }
    ASSERT_EQ(g.shape(), ws) << ch.name;
    const std::vector<double> gv = values(g), wv = values(w);
    double err = 0;
    if (ch.relative) {
      err = rel_l2(gv, wv);
    } else {
      for (size_t i = 0; i < gv.size(); ++i) err = std::max(err, std::fabs(gv[i] - wv[i]));
    }
    EXPECT_LE(err, ch.tol) << ch.name << (ch.relative ? " relative L2 " : " max abs ") << err;
    RecordProperty(ch.name, std::to_string(err));
  }
  // Coord/size decodes: exact bins on the steps that chose those tokens.
  for (const char* name : {"step_xy", "step_hw"}) {
    if (!want.contains(name)) continue;
    const int tok = std::string(name) == "step_xy" ? 240 : 241;
    ASSERT_TRUE(got.contains(name));
    const std::vector<double> gv = values(got.view(name)), wv = values(want.view(name));
    for (size_t k = 0; k < n_steps; ++k) {
      if (want_tokens[k] != tok) continue;
      EXPECT_NEAR(gv[2 * k], wv[2 * k], 1e-6) << name << " step " << k;
      EXPECT_NEAR(gv[2 * k + 1], wv[2 * k + 1], 1e-6) << name << " step " << k;
    }
  }
  if (want.contains("masks")) {
    ASSERT_TRUE(got.contains("masks"));
    const std::vector<double> gv = values(got.view("masks")), wv = values(want.view("masks"));
    ASSERT_EQ(got.view("masks").shape(), want.view("masks").shape());
    size_t equal = 0;
    for (size_t i = 0; i < gv.size(); ++i) equal += (gv[i] != 0) == (wv[i] != 0);
    EXPECT_GE(double(equal) / double(gv.size()), 0.999);
  }
  // Boxes in original-image pixels.
  const auto& boxes = meta["boxes"];
  ASSERT_EQ(result.detections.size(), boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (int k = 0; k < 4; ++k) {
      EXPECT_NEAR(result.detections[i].bbox[size_t(k)], boxes[i]["bbox_xyxy"][size_t(k)].get<double>(), 1e-3);
    }
    EXPECT_NEAR(result.detections[i].x, boxes[i]["x"].get<double>(), 1e-6);
    EXPECT_NEAR(result.detections[i].h, boxes[i]["h"].get<double>(), 1e-6);
  }
}

std::string case_test_name(const ::testing::TestParamInfo<CaseParam>& p) {
  std::string n = p.param.model + "_" + p.param.name;
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n;
}

INSTANTIATE_TEST_SUITE_P(Reference, FixtureCase, ::testing::ValuesIn(all_cases()), case_test_name);

}  // namespace
}  // namespace falcon
