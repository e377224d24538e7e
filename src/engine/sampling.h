// Choosing the next token from a row of logits.
#pragma once

#include <cstdint>
#include <random>

namespace falcon {

// Greedy when temperature == 0 (first maximum); otherwise softmax(logits / temperature)
// restricted to the top_k largest (top_k <= 0: all), sampled with `rng`.
int32_t sample_token(const float* logits, int64_t vocab, float temperature, int top_k, std::mt19937_64& rng);

}  // namespace falcon
