// OpenAI CLIP's byte-level BPE tokenizer, as ComfyUI runs it: transformers' *slow*
// CLIPTokenizer without ftfy (comfy/sd1_clip.py SDTokenizer builds it from comfy/sd1_tokenizer/).
// Without ftfy that tokenizer cleans text with BERT's BasicTokenizer
// (do_lower_case, strip_accents=False, do_split_on_punc=False):
//   1. drop U+0000, U+FFFD and every character of a "C*" category except \t \n \r;
//      turn \t \n \r and "Zs" characters into spaces; put spaces around CJK ideographs;
//   2. NFC-normalise; split on whitespace (Python's str.split()); lower-case each word
//      (Python's str.lower(): full case mapping, final sigma), join with single spaces;
// then splits the result with CLIP's pre-tokenizer regex (PCRE2, UTF + Unicode properties,
// case-insensitive):
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// and maps each piece's UTF-8 bytes to printable characters (GPT-2's bytes_to_unicode) before
// BPE with the merge ranks of merges.txt; a piece's last symbol carries "</w>". The special token
// strings "<|startoftext|>" / "<|endoftext|>" in the text become those tokens (49406 / 49407).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace comfy {

class ClipTokenizer {
 public:
  static constexpr int kStartToken = 49406;  // <|startoftext|>
  static constexpr int kEndToken = 49407;    // <|endoftext|>, also the unknown token

  // Reads `dir`/vocab.json and `dir`/merges.txt. Throws ComfyError naming the file when one is
  // missing or malformed.
  static std::shared_ptr<const ClipTokenizer> load(const std::filesystem::path& dir);
  // The tokenizer of the CLIP vocabulary shipped in the data directory (data/clip, see
  // data_paths.h), loaded once per process.
  static std::shared_ptr<const ClipTokenizer> shared_default();

  // transformers' tokenizer(text)["input_ids"] without the start and end tokens.
  std::vector<int> encode(std::string_view text) const;
  // The BPE pieces of `text` (vocabulary strings such as "photo</w>").
  std::vector<std::string> tokenize(std::string_view text) const;
  // The vocabulary string of `id` (throws for an id outside the vocabulary).
  const std::string& piece(int id) const;
  int vocab_size() const { return static_cast<int>(pieces_.size()); }

  // Step 1-2 above: the text the regex sees (exposed for tests).
  static std::string basic_clean(std::string_view text);

  ClipTokenizer(const ClipTokenizer&) = delete;
  ClipTokenizer& operator=(const ClipTokenizer&) = delete;
  ~ClipTokenizer();

 private:
  ClipTokenizer();
  void bpe(const std::string& token, std::vector<std::string>& out) const;
  void tokenize_plain(std::string_view text, std::vector<std::string>& out) const;

  std::unordered_map<std::string, int> vocab_;
  std::vector<std::string> pieces_;                // id -> vocabulary string
  std::unordered_map<std::string, int> ranks_;     // "a b" -> merge rank
  std::vector<std::string> byte_encoder_;          // byte -> UTF-8 of its printable stand-in
  struct Regex;
  std::unique_ptr<Regex> regex_;
};

}  // namespace comfy
