#include "model/prompt.h"

#include <cmath>

#include "core/error.h"
#include "io/preprocess.h"
#include "text/utf8.h"

namespace falcon {

std::string prompt_for_task(Task task, std::string_view query, const std::string& image_token) {
  text::require_valid_utf8(query, "query");
  if (task == Task::OcrPlain) {
    return image_token + "Extract the text content from this image.\n<|OCR_PLAIN|>";
  }
  if (query.find(image_token) != std::string_view::npos) {
    throw InvalidArgument("query must not contain the image placeholder " + image_token);
  }
  if (query.empty()) throw InvalidArgument("query is empty: say what to find in the image");
  return image_token + "Segment these expressions in the image:<|start_of_query|>" + std::string(query) +
         "<|REF_SEG|>";
}

namespace {

// numpy.linspace(start, stop, num) in float64: i * step + start, the last value exactly stop.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(static_cast<size_t>(num));
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / double(num - 1);
  for (int i = 0; i < num; ++i) y[size_t(i)] = double(i) * step + start;
  y[size_t(num - 1)] = stop;
  return y;
}

bool keeps_position(int32_t id, const SpecialTokens& s) {
  // Patches, registers and end_of_image share the position of image_cls.
  return id == s.image || id == s.reg[0] || id == s.reg[1] || id == s.reg[2] || id == s.reg[3] ||
         id == s.end_of_image;
}

}  // namespace

void compute_positions(const std::vector<int32_t>& ids, const SpecialTokens& special, int grid_h, int grid_w,
                       Tensor& pos_t, Tensor& pos_hw) {
  const int64_t S = int64_t(ids.size());
  pos_t = Tensor::empty({S}, DType::I32);
  pos_hw = Tensor::zeros({S, 2}, DType::F32);
  int32_t count = 0;
  for (int64_t s = 0; s < S; ++s) {
    if (!keeps_position(ids[size_t(s)], special)) ++count;
    pos_t.data<int32_t>()[s] = count - 1;
  }
  if (grid_h <= 0 || grid_w <= 0) return;
  const double xlim = std::sqrt(double(grid_w) / double(grid_h));
  const double ylim = std::sqrt(double(grid_h) / double(grid_w));
  const std::vector<double> hs = linspace(-ylim, ylim, grid_h);
  const std::vector<double> ws = linspace(-xlim, xlim, grid_w);
  int64_t patch = 0;
  for (int64_t s = 0; s < S; ++s) {
    if (ids[size_t(s)] != special.image) continue;
    if (patch >= int64_t(grid_h) * grid_w) throw InternalError("more img tokens than patches");
    pos_hw.data<float>()[2 * s] = float(hs[size_t(patch / grid_w)]);
    pos_hw.data<float>()[2 * s + 1] = float(ws[size_t(patch % grid_w)]);
    ++patch;
  }
}

PromptTensors build_prompt(const Tokenizer& tokenizer, const SpecialTokens& special, const std::string& prompt,
                           const Tensor& pixels, DType patch_dtype) {
  const std::string image_token = tokenizer.id_to_token(special.image);
  const size_t at = prompt.find(image_token);
  if (at == std::string::npos || prompt.find(image_token, at + 1) != std::string::npos) {
    throw InvalidArgument("prompt must contain the image placeholder exactly once");
  }
  if (pixels.rank() != 3 || pixels.dim(0) % 16 != 0 || pixels.dim(1) % 16 != 0 || pixels.dim(2) != 3) {
    throw InternalError("build_prompt: pixels must be [H, W, 3] with H, W multiples of 16");
  }
  const int gh = int(pixels.dim(0) / 16), gw = int(pixels.dim(1) / 16);

  std::vector<int32_t> ids = tokenizer.encode(prompt.substr(0, at), /*add_special_tokens=*/true);
  PromptTensors p;
  p.image_begin = int64_t(ids.size());
  ids.push_back(special.image_cls);
  for (int32_t r : special.reg) ids.push_back(r);
  p.patch_start = int64_t(ids.size());
  ids.insert(ids.end(), size_t(gh) * size_t(gw), special.image);
  p.image_end = int64_t(ids.size());
  ids.push_back(special.end_of_image);
  const std::vector<int32_t> tail = tokenizer.encode(prompt.substr(at + image_token.size()), true);
  ids.insert(ids.end(), tail.begin(), tail.end());

  p.ids = Tensor::empty({int64_t(ids.size())}, DType::I32);
  std::copy(ids.begin(), ids.end(), p.ids.data<int32_t>());
  compute_positions(ids, special, gh, gw, p.pos_t, p.pos_hw);
  p.patches = io::image_patches(pixels, 16, patch_dtype);
  return p;
}

}  // namespace falcon
