// CLIP's byte-level BPE (see clip_tokenizer.h for the exact pipeline and where it comes from).
#include "text/clip_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/json.h"
#include "text/data_paths.h"

namespace comfy {
namespace {

constexpr const char* kStartText = "<|startoftext|>";
constexpr const char* kEndText = "<|endoftext|>";
// transformers reads merges.txt lines [1, 49152 - 256 - 2 + 1): the version line is skipped.
constexpr std::size_t kMergesEnd = 49152 - 256 - 2 + 1;

constexpr const char* kPattern =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";

// Python's str.isspace() (what str.split() splits on).
bool py_isspace(UChar32 c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// BasicTokenizer._is_control: every "C*" category except tab, newline and carriage return.
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_UNASSIGNED:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      return true;
    default:
      return false;
  }
}

bool is_whitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

// BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks.
bool is_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

std::string to_utf8(UChar32 c) {
  std::string out;
  icu::UnicodeString(c).toUTF8String(out);
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ComfyError("FileNotFoundError", "CLIP tokenizer data not found: '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

struct ClipTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() {
    if (code) pcre2_code_free(code);
  }
};

ClipTokenizer::ClipTokenizer() = default;
ClipTokenizer::~ClipTokenizer() = default;

std::shared_ptr<const ClipTokenizer> ClipTokenizer::load(const std::filesystem::path& dir) {
  std::shared_ptr<ClipTokenizer> tok(new ClipTokenizer());

  const auto vocab_path = dir / "vocab.json";
  // Plain (sorted) nlohmann::json: the insertion-ordered comfy::json looks keys up linearly,
  // which is quadratic over 49,408 entries.
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(vocab_path));
  } catch (const nlohmann::json::exception& e) {
    throw ComfyError("ValueError", "invalid CLIP vocabulary '" + vocab_path.string() + "': " + e.what());
  }
  if (!vocab.is_object() || vocab.empty())
    throw ComfyError("ValueError", "invalid CLIP vocabulary '" + vocab_path.string() + "': not an object");
  for (auto& [piece, id] : vocab.items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() > 10'000'000)
      throw ComfyError("ValueError", "invalid CLIP vocabulary '" + vocab_path.string() + "': bad id for '" + piece + "'");
    const auto i = static_cast<std::size_t>(id.get<uint64_t>());
    if (tok->pieces_.size() <= i) tok->pieces_.resize(i + 1);
    tok->pieces_[i] = piece;
    tok->vocab_[piece] = static_cast<int>(i);
  }
  if (!tok->vocab_.count(kStartText) || !tok->vocab_.count(kEndText) ||
      tok->vocab_.at(kStartText) != kStartToken || tok->vocab_.at(kEndText) != kEndToken)
    throw ComfyError("ValueError", "invalid CLIP vocabulary '" + vocab_path.string() + "': special tokens missing");

  // merges.txt as transformers reads it: strip(), split("\n"), lines [1, 48895), each split().
  const auto merges_path = dir / "merges.txt";
  std::string merges = read_file(merges_path);
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  merges.erase(merges.begin(), std::find_if(merges.begin(), merges.end(), not_space));
  merges.erase(std::find_if(merges.rbegin(), merges.rend(), not_space).base(), merges.end());
  std::size_t line_no = 0, pos = 0;
  while (pos <= merges.size() && line_no < kMergesEnd) {
    std::size_t nl = merges.find('\n', pos);
    if (nl == std::string::npos) nl = merges.size();
    if (line_no >= 1) {
      std::istringstream ls(merges.substr(pos, nl - pos));
      std::string a, b, extra;
      if ((ls >> a >> b) && !(ls >> extra)) tok->ranks_.insert_or_assign(a + " " + b, static_cast<int>(line_no - 1));
    }
    ++line_no;
    pos = nl + 1;
  }
  if (tok->ranks_.empty()) throw ComfyError("ValueError", "invalid CLIP merges '" + merges_path.string() + "'");

  // GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for
  // U+0100 onwards in byte order.
  tok->byte_encoder_.resize(256);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    tok->byte_encoder_[b] = to_utf8(printable ? b : 256 + n++);
  }

  int err = 0;
  PCRE2_SIZE err_off = 0;
  tok->regex_ = std::make_unique<Regex>();
  tok->regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                                    PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &err, &err_off, nullptr);
  if (!tok->regex_->code) throw ComfyError("RuntimeError", "cannot compile the CLIP pre-tokenizer regex");
  pcre2_jit_compile(tok->regex_->code, PCRE2_JIT_COMPLETE);  // optional: matching works without JIT
  return tok;
}

std::shared_ptr<const ClipTokenizer> ClipTokenizer::shared_default() {
  static std::once_flag once;
  static std::shared_ptr<const ClipTokenizer> tok;
  std::call_once(once, [] { tok = load(find_data_path("clip/vocab.json").parent_path()); });
  return tok;
}

std::string ClipTokenizer::basic_clean(std::string_view text) {
  // Invalid UTF-8 decodes to U+FFFD, which the clean-up drops (a Python str cannot hold it).
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  icu::UnicodeString cleaned;
  for (int32_t i = 0; i < in.length();) {
    const UChar32 c = in.char32At(i);
    i += U16_LENGTH(c);
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_cjk(c)) {
      cleaned.append(UChar32(' ')).append(c).append(UChar32(' '));
    } else if (is_whitespace(c)) {
      cleaned.append(UChar32(' '));
    } else {
      cleaned.append(c);
    }
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  icu::UnicodeString normal = U_SUCCESS(status) ? nfc->normalize(cleaned, status) : cleaned;
  if (U_FAILURE(status)) throw ComfyError("RuntimeError", "ICU NFC normalisation failed");

  std::string out;
  int32_t word_start = -1;
  auto flush = [&](int32_t end) {
    if (word_start < 0) return;
    icu::UnicodeString word(normal, word_start, end - word_start);
    word.toLower(icu::Locale::getRoot());
    if (!out.empty()) out += ' ';
    word.toUTF8String(out);
    word_start = -1;
  };
  for (int32_t i = 0; i < normal.length();) {
    const UChar32 c = normal.char32At(i);
    if (py_isspace(c)) {
      flush(i);
    } else if (word_start < 0) {
      word_start = i;
    }
    i += U16_LENGTH(c);
  }
  flush(normal.length());
  return out;
}

void ClipTokenizer::bpe(const std::string& token, std::vector<std::string>& out) const {
  if (token == kStartText || token == kEndText) {  // transformers' bpe cache holds these as-is
    out.push_back(token);
    return;
  }
  // Symbols: the token's characters (each a UTF-8 sequence), the last one with "</w>".
  std::vector<std::string> word;
  for (std::size_t i = 0; i < token.size();) {
    std::size_t len = 1;
    const auto lead = static_cast<unsigned char>(token[i]);
    if (lead >= 0xF0) len = 4;
    else if (lead >= 0xE0) len = 3;
    else if (lead >= 0xC0) len = 2;
    word.push_back(token.substr(i, len));
    i += len;
  }
  if (word.empty()) return;
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = std::numeric_limits<int>::max();
    std::string first, second;
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find(word[i] + " " + word[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        first = word[i];
        second = word[i + 1];
      }
    }
    if (best == std::numeric_limits<int>::max()) break;
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (std::size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i]);
        ++i;
      }
    }
    word = std::move(merged);
  }
  for (auto& w : word) out.push_back(std::move(w));
}

void ClipTokenizer::tokenize_plain(std::string_view text, std::vector<std::string>& out) const {
  const std::string clean = basic_clean(text);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  if (!md) throw std::bad_alloc();
  PCRE2_SIZE start = 0;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(clean.data());
  while (start < clean.size()) {
    // PCRE2 validates the whole subject's UTF-8 on every call unless told not to: once is enough.
    const int rc = pcre2_match(regex_->code, subject, clean.size(), start, start == 0 ? 0 : PCRE2_NO_UTF_CHECK, md,
                               nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH: only spaces are left
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    std::string mapped;
    for (PCRE2_SIZE i = ov[0]; i < ov[1]; ++i) mapped += byte_encoder_[static_cast<unsigned char>(clean[i])];
    bpe(mapped, out);
    start = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
  }
  pcre2_match_data_free(md);
}

std::vector<std::string> ClipTokenizer::tokenize(std::string_view text) const {
  // The special-token strings are split out first (as PreTrainedTokenizer.tokenize does with
  // its added tokens), exactly and case-sensitively.
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t a = text.find(kStartText, pos), b = text.find(kEndText, pos);
    std::size_t hit = std::min(a, b);
    if (hit == std::string_view::npos) {
      tokenize_plain(text.substr(pos), out);
      break;
    }
    tokenize_plain(text.substr(pos, hit - pos), out);
    const std::string special = hit == a ? kStartText : kEndText;
    out.push_back(special);
    pos = hit + special.size();
  }
  return out;
}

std::vector<int> ClipTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  for (const auto& piece : tokenize(text)) {
    auto it = vocab_.find(piece);
    ids.push_back(it == vocab_.end() ? kEndToken : it->second);  // unk_token is <|endoftext|>
  }
  return ids;
}

const std::string& ClipTokenizer::piece(int id) const {
  if (id < 0 || id >= vocab_size()) throw ComfyError("IndexError", "token id " + std::to_string(id) + " is out of range");
  return pieces_[static_cast<std::size_t>(id)];
}

}  // namespace comfy
