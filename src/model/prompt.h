// Building the model's input from a prompt and an image: the token sequence with the image
// block, temporal and spatial positions, the bidirectional image span and the patches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "falcon/engine.h"
#include "model/falcon_perception.h"
#include "text/special_tokens.h"
#include "text/tokenizer.h"

namespace falcon {

// The prompt template of a task with the query inserted; `image_token` is the placeholder's
// string ("<|image|>"). Queries are checked: valid UTF-8, not empty, no image placeholder.
std::string prompt_for_task(Task task, std::string_view query, const std::string& image_token);

// pos_t and pos_hw of a token sequence (MODEL.md "Positions"): pos_t counts the tokens that
// are not img / reg / end_of_image, minus one; img tokens get (h, w) on the grid gh x gw.
void compute_positions(const std::vector<int32_t>& ids, const SpecialTokens& special, int grid_h, int grid_w,
                       Tensor& pos_t, Tensor& pos_hw);

// Tokenizes `prompt` (special tokens matched first), replaces the image placeholder with the
// image block for a patch grid of pixels [H, W, 3] (H, W multiples of 16), and fills every
// tensor of PromptTensors, the patches in `patch_dtype` (the model's patch_dtype()).
PromptTensors build_prompt(const Tokenizer& tokenizer, const SpecialTokens& special, const std::string& prompt,
                           const Tensor& pixels, DType patch_dtype = DType::F32);

}  // namespace falcon
