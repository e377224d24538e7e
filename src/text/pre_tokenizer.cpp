#include "text/pre_tokenizer.h"

#include <functional>

#include "core/error.h"
#include "text/byte_level.h"
#include "text/pattern.h"
#include "text/split.h"
#include "text/unicode.h"
#include "text/utf8.h"

namespace falcon::text {

const char* const kGpt2SplitRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// Replaces every piece by the non-empty ranges that `cut(text)` keeps.
template <class Cut>
void split_pieces(std::vector<PreToken>& pieces, Cut&& cut) {
  std::vector<PreToken> out;
  out.reserve(pieces.size());
  for (PreToken& piece : pieces) {
    const std::vector<Segment> segments = cut(piece.text);
    if (out.capacity() < out.size() + segments.size())
      out.reserve(2 * (out.size() + segments.size()));
    for (const Segment& s : segments) {
      if (s.begin == s.end) continue;
      out.push_back(
          {piece.text.substr(s.begin, s.end - s.begin), piece.at_text_start && s.begin == 0});
    }
  }
  pieces = std::move(out);
}

void split_on_chars(std::vector<PreToken>& pieces,
                    const std::function<bool(char32_t)>& is_delimiter, SplitBehavior behavior) {
  split_pieces(pieces, [&](const std::string& text) {
    return apply_split_behavior(segments_from_chars(text, is_delimiter), behavior);
  });
}

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex_) regex_ = Pattern::regex(kGpt2SplitRegex);
  }
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    if (add_prefix_space_) {
      for (PreToken& p : pieces) {
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
      }
    }
    if (use_regex_) {
      split_pieces(pieces, [&](const std::string& text) {
        return segments_from_matches(text, regex_.find_all(text));  // Isolated keeps everything
      });
    }
    for (PreToken& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      append_byte_level(mapped, p.text);
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
  Pattern regex_ = Pattern::literal("");
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_pieces(pieces, [&](const std::string& text) {
      auto segments = segments_from_matches(text, pattern_.find_all(text));
      if (invert_) invert_segments(segments);
      return apply_split_behavior(segments, behavior_);
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class CharClassPreTokenizer final : public PreTokenizer {
 public:
  CharClassPreTokenizer(std::function<bool(char32_t)> is_delimiter, SplitBehavior behavior)
      : is_delimiter_(std::move(is_delimiter)), behavior_(behavior) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_on_chars(pieces, is_delimiter_, behavior_);
  }

 private:
  std::function<bool(char32_t)> is_delimiter_;
  SplitBehavior behavior_;
};

// The reference's `\w+|[^\w\s]+` with whitespace removed: maximal runs of word characters and
// maximal runs of other non-space characters.
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_pieces(pieces, [](const std::string& text) {
      std::vector<Segment> runs;
      int run_class = 0;  // 0 space, 1 word, 2 other
      size_t pos = 0;
      while (pos < text.size()) {
        const size_t start = pos;
        const char32_t cp = next_code_point(text, pos);
        const int c = is_word_char(cp) ? 1 : is_white_space(cp) ? 0 : 2;
        if (c != 0 && c == run_class) {
          runs.back().end = pos;
        } else if (c != 0) {
          runs.push_back({start, pos, true});
        }
        run_class = c;
      }
      return runs;
    });
  }
};

class BertPreTokenizer final : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    split_on_chars(pieces, is_white_space, SplitBehavior::Removed);
    split_on_chars(pieces, is_punctuation, SplitBehavior::Isolated);
  }
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement), scheme_(scheme), split_(split) {
    append_utf8(replacement_utf8_, replacement);
  }
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (PreToken& p : pieces) {
      std::string replaced;
      replaced.reserve(p.text.size() + replacement_utf8_.size());
      for (const char c : p.text) {
        if (c == ' ') {
          replaced.append(replacement_utf8_);
        } else {
          replaced.push_back(c);
        }
      }
      const bool starts_with_replacement = replaced.starts_with(replacement_utf8_);
      const bool prepend =
          scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_text_start);
      if (prepend && !starts_with_replacement) replaced.insert(0, replacement_utf8_);
      p.text = std::move(replaced);
    }
    if (split_) {
      split_on_chars(
          pieces, [this](char32_t c) { return c == replacement_; }, SplitBehavior::MergedWithNext);
    }
  }

 private:
  char32_t replacement_;
  std::string replacement_utf8_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<PreToken>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

SplitBehavior behavior_field(const JsonField& config, const char* key, SplitBehavior fallback) {
  const auto f = config.find(key);
  if (!f) return fallback;
  try {
    return parse_split_behavior(f->as_string());
  } catch (const InvalidArgument& e) {
    f->fail(e.what());
  }
}

// A single character given as a JSON string.
char32_t char_field(const JsonField& field) {
  const std::string s = field.as_string();
  if (s.empty() || count_code_points(s) != 1) field.fail("expected exactly one character");
  size_t pos = 0;
  return next_code_point(s, pos);
}

}  // namespace

PrependScheme parse_prepend_scheme(const JsonField& config) {
  // Older files carry add_prefix_space instead of prepend_scheme.
  const auto scheme = config.find("prepend_scheme");
  const auto legacy = config.find("add_prefix_space");
  PrependScheme result = PrependScheme::Always;
  if (scheme) {
    const std::string s = scheme->as_string();
    if (s == "first") {
      result = PrependScheme::First;
    } else if (s == "never") {
      result = PrependScheme::Never;
    } else if (s == "always") {
      result = PrependScheme::Always;
    } else {
      scheme->fail("unknown prepend_scheme '" + s + "'");
    }
  }
  if (legacy && !legacy->as_bool()) {
    if (result != PrependScheme::Never && scheme) {
      legacy->fail("add_prefix_space false contradicts prepend_scheme");
    }
    result = PrependScheme::Never;
  }
  return result;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonField& config) {
  const std::string type = config.type();
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(config.bool_or("add_prefix_space", true),
                                                   config.bool_or("use_regex", true));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(
        parse_pattern(config.at("pattern")),
        behavior_field(config, "behavior", SplitBehavior::Isolated),
        config.bool_or("invert", false));
  }
  if (type == "Punctuation") {
    return std::make_unique<CharClassPreTokenizer>(
        is_punctuation, behavior_field(config, "behavior", SplitBehavior::Isolated));
  }
  if (type == "Digits") {
    const bool individual = config.bool_or("individual_digits", false);
    return std::make_unique<CharClassPreTokenizer>(
        is_numeric, individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") {
    return std::make_unique<CharClassPreTokenizer>(is_white_space, SplitBehavior::Removed);
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "CharDelimiterSplit") {
    const char32_t delimiter = char_field(config.at("delimiter"));
    return std::make_unique<CharClassPreTokenizer>(
        [delimiter](char32_t c) { return c == delimiter; }, SplitBehavior::Removed);
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(char_field(config.at("replacement")),
                                                   parse_prepend_scheme(config),
                                                   config.bool_or("split", true));
  }
  if (type == "Sequence") {
    const JsonField list = config.at("pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.array_size(); ++i) steps.push_back(parse_pre_tokenizer(list.at(i)));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  config.at("type").unsupported("unsupported pre_tokenizer '" + type + "'");
}

}  // namespace falcon::text
