#include "text/post_processor.h"

#include <map>
#include <string>

#include "core/error.h"

namespace falcon::text {
namespace {

// The single-sequence template: special-token id runs around the sequence ("$A").
class TemplateProcessor final : public PostProcessor {
 public:
  // `before` and `after` are the ids of the template pieces left and right of "$A".
  TemplateProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

// ByteLevel only trims offsets, which this engine does not report.
class NoOpProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// Reads TemplateProcessing's "single" template and "special_tokens" table.
std::unique_ptr<PostProcessor> parse_template(const JsonField& config) {
  std::map<std::string, std::vector<int32_t>> special_ids;
  if (const auto table = config.find("special_tokens")) {
    if (!table->json().is_object()) table->fail("expected an object");
    for (const auto& item : table->json().items()) {
      const JsonField entry = table->at(item.key());
      const JsonField ids = entry.at("ids");
      std::vector<int32_t> values;
      for (size_t i = 0; i < ids.array_size(); ++i) values.push_back(ids.at(i).as_id());
      special_ids[item.key()] = std::move(values);
    }
  }

  const JsonField single = config.at("single");
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.array_size(); ++i) {
    const JsonField piece = single.at(i);
    std::string special;  // empty for the sequence itself
    if (piece.json().is_string()) {
      // Template-string form: "$A", "$", "$0", "$A:1" are the sequence, anything else a token.
      const std::string s = piece.as_string();
      if (s.starts_with("$")) {
        if (s.starts_with("$B") || s.starts_with("$b"))
          piece.unsupported("sequence B in a single template");
      } else {
        special = s.substr(0, s.rfind(':'));
      }
    } else if (const auto seq = piece.find("Sequence")) {
      if (seq->at("id").as_string() != "A")
        seq->at("id").unsupported("sequence B in a single template");
    } else if (const auto tok = piece.find("SpecialToken")) {
      special = tok->at("id").as_string();
    } else {
      piece.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    if (special.empty()) {
      if (seen_sequence) piece.fail("the sequence appears twice");
      seen_sequence = true;
      continue;
    }
    const auto it = special_ids.find(special);
    if (it == special_ids.end())
      piece.fail("special token '" + special + "' missing from special_tokens");
    auto& target = seen_sequence ? after : before;
    target.insert(target.end(), it->second.begin(), it->second.end());
  }
  if (!seen_sequence) single.fail("the template has no sequence");
  return std::make_unique<TemplateProcessor>(std::move(before), std::move(after));
}

// BertProcessing / RobertaProcessing: cls + sequence + sep, each given as [token, id].
std::unique_ptr<PostProcessor> parse_cls_sep(const JsonField& config) {
  const auto id_of = [&](const char* key) {
    const JsonField pair = config.at(key);
    if (pair.array_size() != 2) pair.fail("expected [token, id]");
    return pair.at(1).as_id();
  };
  return std::make_unique<TemplateProcessor>(std::vector<int32_t>{id_of("cls")},
                                             std::vector<int32_t>{id_of("sep")});
}

}  // namespace

std::unique_ptr<PostProcessor> parse_post_processor(const JsonField& config) {
  const std::string type = config.type();
  if (type == "TemplateProcessing") return parse_template(config);
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") return parse_cls_sep(config);
  if (type == "Sequence") {
    const JsonField list = config.at("processors");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.array_size(); ++i)
      steps.push_back(parse_post_processor(list.at(i)));
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  config.at("type").unsupported("unsupported post_processor '" + type + "'");
}

}  // namespace falcon::text
