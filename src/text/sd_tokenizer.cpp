// SDTokenizer.tokenize_with_weights, step by step as comfy/sd1_clip.py does it (see the header).
#include "text/sd_tokenizer.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "text/prompt_weights.h"
#include "text/py_str.h"

namespace comfy {
namespace {

constexpr std::string_view kEmbeddingPrefix = "embedding:";
constexpr int kMaxWordLength = 8;  // a word of this many tokens may be split across chunks

// re.split(' embedding:|\nembedding:', s), with "embedding:" put back in front of every piece
// after the first, and empty pieces dropped.
std::vector<std::string> split_embeddings(const std::string& s) {
  std::vector<std::string> pieces;
  std::size_t pos = 0;
  bool first = true;
  while (true) {
    std::size_t a = s.find(" embedding:", pos), b = s.find("\nembedding:", pos);
    std::size_t hit = std::min(a, b);
    std::string piece = s.substr(pos, hit == std::string::npos ? std::string::npos : hit - pos);
    pieces.push_back(first ? piece : std::string(kEmbeddingPrefix) + piece);
    first = false;
    if (hit == std::string::npos) break;
    pos = hit + 1 + kEmbeddingPrefix.size();
  }
  std::vector<std::string> out;
  for (auto& p : pieces)
    if (!p.empty()) out.push_back(std::move(p));
  return out;
}

std::string join(const std::vector<std::string>& parts, std::size_t from, const char* sep) {
  std::string out;
  for (std::size_t i = from; i < parts.size(); ++i) {
    if (i > from) out += sep;
    out += parts[i];
  }
  return out;
}

struct Token {
  int id = 0;
  std::string embedding;
  int64_t row = 0;
  double weight = 1.0;
};

}  // namespace

SDTokenizer::SDTokenizer(std::shared_ptr<const ClipTokenizer> clip, SDTokenizerOptions options,
                         EmbeddingLookup embeddings)
    : clip_(std::move(clip)),
      options_(options),
      embeddings_(std::move(embeddings)),
      pad_token_(options.pad_with_end ? ClipTokenizer::kEndToken : 0) {
  if (!clip_) throw ComfyError("ValueError", "SDTokenizer needs a CLIP tokenizer");
  // Below this a word of kMaxWordLength - 1 tokens could never fit a chunk (ComfyUI would loop).
  if (options_.max_length < kMaxWordLength + 2)
    throw ComfyError("ValueError", "SDTokenizer max_length must be at least " + std::to_string(kMaxWordLength + 2));
}

TokenChunks SDTokenizer::tokenize_with_weights(std::string_view text, bool disable_weights) const {
  std::vector<WeightedSegment> segments =
      disable_weights ? std::vector<WeightedSegment>{{unescape_prompt(text), 1.0}} : parse_prompt_weights(text);

  // Words: groups of tokens that share a word id.
  std::vector<std::vector<Token>> groups;
  for (const auto& segment : segments) {
    for (std::string word : split_embeddings(segment.text)) {
      if (embeddings_ && word.starts_with(kEmbeddingPrefix)) {
        const std::string embedding_name = py::strip(std::string_view(word).substr(kEmbeddingPrefix.size()), "\n");
        const std::vector<std::string> split = py::split(embedding_name);
        // ComfyUI indexes the first word without a check: "embedding:" alone raises IndexError.
        if (split.empty()) throw ComfyError("IndexError", "list index out of range");
        std::string name = split[0];
        std::string leftover = join(split, 1, " ");
        std::optional<int64_t> rows = embeddings_(name);
        if (!rows) {
          const std::string stripped = py::strip(name, ",");
          if (py::length(stripped) < py::length(name)) {
            rows = stripped.empty() ? std::nullopt : embeddings_(stripped);
            leftover = py::slice_from(name, py::length(stripped)) + " " + leftover;
            name = stripped;
          }
        }
        if (!rows) {
          spdlog::warn("warning, embedding:{} does not exist, ignoring", embedding_name);
        } else {
          std::vector<Token> group;
          for (int64_t r = 0; r < *rows; ++r) group.push_back({0, name, r, segment.weight});
          groups.push_back(std::move(group));
        }
        if (leftover.empty()) continue;
        word = leftover;
      }
      std::vector<Token> group;
      for (int id : clip_->encode(word)) group.push_back({id, {}, 0, segment.weight});
      groups.push_back(std::move(group));
    }
  }

  // Chunks of max_length: start, tokens, end, padding.
  const int max_length = options_.max_length;
  const auto special = [](int id) { return TokenRow{id, {}, 0, 1.0, 0}; };
  const auto pad = [&](std::vector<TokenRow>& batch, int amount) {
    for (int i = 0; i < amount; ++i) batch.push_back(special(pad_token_));
  };
  TokenChunks chunks;
  chunks.push_back({special(ClipTokenizer::kStartToken)});
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const auto& group = groups[i];
    const bool is_large = group.size() >= kMaxWordLength;
    const int word_id = static_cast<int>(i) + 1;
    std::size_t next = 0;  // the first token of the group not yet placed
    auto row = [&](const Token& t) { return TokenRow{t.id, t.embedding, t.row, t.weight, word_id}; };
    while (next < group.size()) {
      auto& batch = chunks.back();
      const std::size_t left = group.size() - next;
      if (static_cast<int>(left + batch.size()) > max_length - 1) {
        const int remaining = max_length - static_cast<int>(batch.size()) - 1;
        if (is_large) {
          for (int k = 0; k < remaining; ++k) batch.push_back(row(group[next++]));
          batch.push_back(special(ClipTokenizer::kEndToken));
        } else {
          batch.push_back(special(ClipTokenizer::kEndToken));
          pad(batch, remaining);
        }
        chunks.push_back({special(ClipTokenizer::kStartToken)});
      } else {
        for (; next < group.size(); ++next) batch.push_back(row(group[next]));
      }
    }
  }
  auto& last = chunks.back();
  last.push_back(special(ClipTokenizer::kEndToken));
  if (options_.min_padding) pad(last, *options_.min_padding);
  if (static_cast<int>(last.size()) < max_length) pad(last, max_length - static_cast<int>(last.size()));
  if (options_.min_length && static_cast<int>(last.size()) < *options_.min_length)
    pad(last, *options_.min_length - static_cast<int>(last.size()));
  return chunks;
}

}  // namespace comfy
