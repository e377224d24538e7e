// Load time and encode throughput on a tokenizer the size of the real Falcon ones (65536 ids,
// byte-level BPE, the Falcon Split + ByteLevel pre-tokenizer), generated here: every merge
// builds a made-up word left to right, so encoding text made of those words exercises real
// merge chains. Limits are loose (shared CI machines); the numbers go to the test log.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "text/byte_level.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace falcon {
namespace {

constexpr int kVocabSize = 65536;

#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__)
constexpr bool kOptimisedBuild = true;
#else
constexpr bool kOptimisedBuild = false;
#endif

std::string byte_level(std::string_view s) {
  std::string out;
  text::append_byte_level(out, s);
  return out;
}

struct GeneratedTokenizer {
  std::string json;
  std::vector<std::string> words;  // " word" strings whose merge chains are in the file
};

GeneratedTokenizer generate_tokenizer() {
  std::mt19937 rng(1234);
  const std::vector<std::string> onsets = {"b",  "c",  "d",  "f",  "g",  "h", "k", "l",  "m",
                                           "n",  "p",  "r",  "s",  "t",  "v", "w", "st", "tr",
                                           "ch", "sh", "th", "pl", "gr", "é", "ñ", "ж",  "к"};
  const std::vector<std::string> vowels = {"a", "e", "i", "o", "u", "y", "ou", "ea", "ö", "и"};
  nlohmann::json vocab = nlohmann::json::object();
  std::vector<std::string> id_to_token;
  const auto add_token = [&](const std::string& t) {
    if (vocab.contains(t)) return;
    vocab[t] = static_cast<int>(id_to_token.size());
    id_to_token.push_back(t);
  };
  for (int b = 0; b < 256; ++b) add_token(byte_level(std::string(1, static_cast<char>(b))));
  nlohmann::json merges = nlohmann::json::array();
  GeneratedTokenizer g;
  std::set<std::string> seen_words;
  while (id_to_token.size() < size_t(kVocabSize)) {
    std::string word = rng() % 2 ? " " : "";
    const int syllables = 1 + int(rng() % 4);
    for (int s = 0; s < syllables; ++s) {
      word.append(onsets[rng() % onsets.size()]);
      word.append(vowels[rng() % vowels.size()]);
    }
    if (!seen_words.insert(word).second) continue;
    if (word[0] == ' ') g.words.push_back(word);
    // Merge chain: first byte-level char, then one char at a time.
    const std::string mapped = byte_level(word);
    size_t pos = 0;
    text::next_code_point(mapped, pos);
    std::string left = mapped.substr(0, pos);
    while (pos < mapped.size() && id_to_token.size() < size_t(kVocabSize)) {
      const size_t start = pos;
      text::next_code_point(mapped, pos);
      const std::string right = mapped.substr(start, pos - start);
      std::string merged = left;
      merged.append(right);
      if (!vocab.contains(merged)) {
        std::string merge = left;
        merge.append(" ").append(right);
        merges.push_back(merge);
        add_token(merged);
      }
      left = merged;
    }
  }
  nlohmann::json added = nlohmann::json::array();
  for (int id = 0; id < 4; ++id) {
    added.push_back({{"id", id},
                     {"content", id_to_token[size_t(id)]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  const std::string falcon_split =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const nlohmann::json j = {{"version", "1.0"},
                            {"added_tokens", added},
                            {"normalizer", nullptr},
                            {"pre_tokenizer",
                             {{"type", "Sequence"},
                              {"pretokenizers",
                               {{{"type", "Split"},
                                 {"pattern", {{"Regex", falcon_split}}},
                                 {"behavior", "Isolated"},
                                 {"invert", false}},
                                {{"type", "ByteLevel"},
                                 {"add_prefix_space", false},
                                 {"trim_offsets", true},
                                 {"use_regex", false}}}}}},
                            {"post_processor", nullptr},
                            {"decoder",
                             {{"type", "ByteLevel"},
                              {"add_prefix_space", true},
                              {"trim_offsets", true},
                              {"use_regex", true}}},
                            {"model",
                             {{"type", "BPE"},
                              {"dropout", nullptr},
                              {"unk_token", nullptr},
                              {"byte_fallback", false},
                              {"vocab", vocab},
                              {"merges", merges}}}};
  g.json = j.dump();
  return g;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(TokenizerSpeedTest, LoadsA65kVocabularyAndEncodesQuickly) {
  const GeneratedTokenizer g = generate_tokenizer();
  auto t0 = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::from_json(g.json, "generated-65k");
  const double load_s = seconds_since(t0);
  ASSERT_EQ(tok.vocab_size(), kVocabSize);

  // ~1 MB of text from the generated words, with punctuation, digits and newlines mixed in.
  std::mt19937 rng(99);
  std::string text;
  while (text.size() < (1u << 20)) {
    text += g.words[rng() % g.words.size()];
    const unsigned r = rng() % 16;
    if (r == 0) text += ", ";
    if (r == 1) text += ".\n";
    if (r == 2) text.append(" ").append(std::to_string(rng() % 100000));
    if (r == 3) text += " ";
  }
  t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, true);
  const double encode_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const std::string decoded = tok.decode(ids);
  const double decode_s = seconds_since(t0);

  EXPECT_EQ(decoded, text);
  // The merge chains must have fired: far fewer ids than bytes.
  EXPECT_LT(ids.size(), text.size() / 2);
  const double mb = double(text.size()) / 1e6;
  std::printf(
      "[speed] load %.1f ms (%zu bytes of JSON), encode %.1f MB/s (%zu ids), decode %.1f MB/s\n",
      load_s * 1e3, g.json.size(), mb / encode_s, ids.size(), mb / decode_s);
  RecordProperty("load_ms", std::to_string(load_s * 1e3));
  RecordProperty("encode_mb_per_s", std::to_string(mb / encode_s));
  // Optimised builds only: sanitizers and -O0 are 10-20x slower.
  if (kOptimisedBuild) {
    EXPECT_LT(load_s, 2.0);
    EXPECT_LT(encode_s, 10.0);
  }
}

}  // namespace
}  // namespace falcon
