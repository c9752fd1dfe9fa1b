// ComfyUI's comfy_extras/nodes_string.py: string utilities with Python's str and re semantics.
// Strings are UTF-8; lengths, indices and slices count code points as Python's str does. Regular
// expressions run on PCRE2 (UTF + Unicode properties), configured to behave as Python's `re`:
// \Z means the very end, only "\n" ends a line, and re.sub's replacement template (\1, \g<name>,
// \g<0>, octal and letter escapes) is parsed as Python parses it.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <optional>

#include "core/error.h"
#include "nodes/all.h"
#include "text/py_str.h"

namespace comfy {
namespace {

// ---------------------------------------------------------------- code points

// UTF-8 <-> code points: Python's str counts code points (text/py_str.h).
using py::decode_utf8;
using py::encode_utf8;

// Unicode simple case mappings from the C library's UTF-8 locale (Python uses the full
// mappings; they differ for a few characters such as 'ß'.upper() == 'SS').
locale_t utf8_locale() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return l ? l : newlocale(LC_CTYPE_MASK, "C", static_cast<locale_t>(0));
  }();
  return loc;
}
char32_t to_upper(char32_t c) { return static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), utf8_locale())); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), utf8_locale())); }
bool is_cased(char32_t c) { return iswupper_l(c, utf8_locale()) || iswlower_l(c, utf8_locale()); }

std::string upper(const std::string& s) {
  std::u32string out;
  for (char32_t c : decode_utf8(s)) {
    if (c == U'\u00DF') out += U"SS";  // the one full mapping users meet: German sharp s
    else out += to_upper(c);
  }
  return encode_utf8(out);
}

std::string lower(const std::string& s) {
  std::u32string u = decode_utf8(s);
  for (auto& c : u) c = to_lower(c);
  return encode_utf8(u);
}

// str.capitalize: the first character upper (title) case, every other one lower case.
std::string capitalize(const std::string& s) {
  std::u32string u = decode_utf8(s);
  for (size_t i = 0; i < u.size(); ++i) u[i] = i == 0 ? to_upper(u[i]) : to_lower(u[i]);
  return encode_utf8(u);
}

// str.title: a cased character after a cased one is lowered, any other one is raised, so
// "they're 2nd" becomes "They'Re 2Nd".
std::string title(const std::string& s) {
  std::u32string u = decode_utf8(s);
  bool previous_cased = false;
  for (auto& c : u) {
    c = previous_cased ? to_lower(c) : to_upper(c);
    previous_cased = is_cased(c);
  }
  return encode_utf8(u);
}

// str.isspace for the characters str.strip() removes.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string strip(const std::string& s, bool left, bool right) {
  std::u32string u = decode_utf8(s);
  size_t begin = 0, end = u.size();
  if (left)
    while (begin < end && is_space(u[begin])) ++begin;
  if (right)
    while (end > begin && is_space(u[end - 1])) --end;
  return encode_utf8(u.substr(begin, end - begin));
}

// string[start:end] with Python's slice rules: negative indices count from the end, and
// out-of-range ones are clamped.
std::string substring(const std::string& s, int64_t start, int64_t end) {
  std::u32string u = decode_utf8(s);
  int64_t n = static_cast<int64_t>(u.size());
  auto clamp_index = [n](int64_t i) {
    if (i < 0) i += n;
    return std::clamp<int64_t>(i, 0, n);
  };
  start = clamp_index(start);
  end = clamp_index(end);
  return end <= start ? std::string() : encode_utf8(u.substr(start, end - start));
}

// str.replace: an empty `find` inserts `replace` before every character and at the end.
std::string replace_all(const std::string& s, const std::string& find, const std::string& replace) {
  std::string out;
  if (find.empty()) {
    std::u32string u = decode_utf8(s);
    for (char32_t c : u) out += replace + encode_utf8(std::u32string(1, c));
    return out + replace;
  }
  size_t pos = 0;
  for (size_t hit; (hit = s.find(find, pos)) != std::string::npos; pos = hit + find.size()) out += s.substr(pos, hit - pos) + replace;
  return out + s.substr(pos);
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0 && s.size() >= p.size(); }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// ---------------------------------------------------------------- regular expressions

// Python's `re.error` (ComfyUI reports its exception type as "re.error").
ComfyError re_error(const std::string& message) { return ComfyError("re.error", message); }

struct Flags {
  bool ignore_case = false, multiline = false, dotall = false;
};

// A compiled pattern and the names of its groups.
class Regex {
 public:
  Regex(const std::string& pattern, Flags flags) {
    uint32_t options = PCRE2_UTF | PCRE2_UCP;
    if (flags.ignore_case) options |= PCRE2_CASELESS;
    if (flags.multiline) options |= PCRE2_MULTILINE;
    if (flags.dotall) options |= PCRE2_DOTALL;
    std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> ctx(pcre2_compile_context_create(nullptr),
                                                                                       pcre2_compile_context_free);
    pcre2_set_newline(ctx.get(), PCRE2_NEWLINE_LF);
    pcre2_set_bsr(ctx.get(), PCRE2_BSR_UNICODE);
    std::string translated = translate(pattern);
    int code = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options, &code, &offset, ctx.get());
    if (!code_) throw re_error(message(code) + " at position " + std::to_string(offset));
    pcre2_pattern_info(code_, PCRE2_INFO_CAPTURECOUNT, &groups_);
    uint32_t count = 0, entry_size = 0;
    PCRE2_SPTR table = nullptr;
    pcre2_pattern_info(code_, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(code_, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
    pcre2_pattern_info(code_, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; ++i) {
      const unsigned char* e = table + i * entry_size;
      names_[reinterpret_cast<const char*>(e + 2)] = (e[0] << 8) | e[1];
    }
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  ~Regex() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  uint32_t groups() const { return groups_; }
  const std::map<std::string, uint32_t>& names() const { return names_; }

  struct Match {
    std::vector<std::optional<std::pair<size_t, size_t>>> spans;  // group 0..n; nullopt: did not take part
    std::optional<std::string> group(const std::string& s, size_t i) const {
      if (!spans[i]) return std::nullopt;
      return s.substr(spans[i]->first, spans[i]->second - spans[i]->first);
    }
  };

  // Every match from left to right (at most `limit`, 0: all), as re.finditer finds them: after
  // an empty match the next one must be non-empty at that position or start further on; an
  // empty match right after a non-empty one is allowed (Python 3.7+, and Perl).
  std::vector<Match> find_all(const std::string& s, size_t limit = 0) const {
    std::vector<Match> out;
    size_t pos = 0;
    bool last_empty = false;
    while (pos <= s.size() && (limit == 0 || out.size() < limit)) {
      uint32_t opts = last_empty ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
      int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, opts, data_, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) {
        if (!last_empty) break;
        // advance one code point past the empty match
        ++pos;
        while (pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) ++pos;
        last_empty = false;
        continue;
      }
      if (rc < 0) throw re_error(message(rc));
      out.push_back(current());
      auto [b, e] = *out.back().spans[0];
      last_empty = b == e;
      pos = e;
    }
    return out;
  }

  std::optional<Match> search(const std::string& s) const {
    auto all = find_all(s, 1);
    if (all.empty()) return std::nullopt;
    return all.front();
  }

 private:
  Match current() const {
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_);
    Match m;
    for (uint32_t i = 0; i <= groups_; ++i) {
      if (ov[2 * i] == PCRE2_UNSET) m.spans.push_back(std::nullopt);
      else m.spans.push_back(std::make_pair(ov[2 * i], ov[2 * i + 1]));
    }
    return m;
  }

  static std::string message(int code) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(code, buffer, sizeof buffer);
    return reinterpret_cast<const char*>(buffer);
  }

  // Python's \Z is PCRE2's \z (the very end; PCRE2's \Z also matches before a final newline).
  static std::string translate(const std::string& p) {
    std::string out;
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i] == '\\' && i + 1 < p.size()) {
        out += '\\';
        out += p[i + 1] == 'Z' ? 'z' : p[i + 1];
        ++i;
      } else {
        out += p[i];
      }
    }
    return out;
  }

  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
  uint32_t groups_ = 0;
  std::map<std::string, uint32_t> names_;
};

// re.sub's replacement template, parsed once: literal text and group references.
struct Template {
  struct Piece {
    std::string literal;
    int group = -1;  // >= 0: the text of that group ("" when it did not take part)
  };
  std::vector<Piece> pieces;

  Template(const std::string& repl, const Regex& re) {
    std::string literal;
    auto flush = [&] {
      if (!literal.empty()) pieces.push_back({literal, -1});
      literal.clear();
    };
    auto add_group = [&](long index, size_t pos) {
      if (index > static_cast<long>(re.groups()))
        throw re_error("invalid group reference " + std::to_string(index) + " at position " + std::to_string(pos));
      flush();
      pieces.push_back({"", static_cast<int>(index)});
    };
    auto is_oct = [](char c) { return c >= '0' && c <= '7'; };
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    for (size_t i = 0; i < repl.size(); ++i) {
      if (repl[i] != '\\') {
        literal += repl[i];
        continue;
      }
      size_t start = i;
      if (i + 1 >= repl.size()) throw re_error("bad escape (end of pattern) at position " + std::to_string(start));
      char c = repl[++i];
      if (c == 'g') {
        if (i + 1 >= repl.size() || repl[i + 1] != '<') throw re_error("missing < at position " + std::to_string(i + 1));
        size_t close = repl.find('>', i + 2);
        if (close == std::string::npos) throw re_error("missing >, unterminated name at position " + std::to_string(i + 2));
        std::string name = repl.substr(i + 2, close - i - 2);
        if (name.empty()) throw re_error("missing group name at position " + std::to_string(i + 2));
        long index;
        if (auto it = re.names().find(name); it != re.names().end()) {
          index = it->second;
        } else if (std::all_of(name.begin(), name.end(), is_digit)) {
          index = std::stol(name.size() > 9 ? name.substr(0, 9) : name);
        } else if (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') {
          throw ComfyError("IndexError", "unknown group name '" + name + "'");
        } else {
          throw re_error("bad character in group name '" + name + "' at position " + std::to_string(i + 2));
        }
        add_group(index, i + 2);
        i = close;
      } else if (c == '0') {
        std::string digits = "0";
        if (i + 1 < repl.size() && is_oct(repl[i + 1])) {
          digits += repl[++i];
          if (i + 1 < repl.size() && is_oct(repl[i + 1])) digits += repl[++i];
        }
        literal += encode_utf8(std::u32string(1, static_cast<char32_t>(std::stoi(digits, nullptr, 8) & 0xFF)));
      } else if (is_digit(c)) {
        std::string digits(1, c);
        bool octal = false;
        if (i + 1 < repl.size() && is_digit(repl[i + 1])) {
          digits += repl[++i];
          if (is_oct(digits[0]) && is_oct(digits[1]) && i + 1 < repl.size() && is_oct(repl[i + 1])) {
            digits += repl[++i];
            octal = true;
            int value = std::stoi(digits, nullptr, 8);
            if (value > 0377)
              throw re_error("octal escape value \\" + digits + " outside of range 0-0o377 at position " + std::to_string(start));
            literal += encode_utf8(std::u32string(1, static_cast<char32_t>(value)));
          }
        }
        if (!octal) add_group(std::stol(digits), start + 1);
      } else {
        switch (c) {
          case 'a': literal += '\a'; break;
          case 'b': literal += '\b'; break;
          case 'f': literal += '\f'; break;
          case 'n': literal += '\n'; break;
          case 'r': literal += '\r'; break;
          case 't': literal += '\t'; break;
          case 'v': literal += '\v'; break;
          case '\\': literal += '\\'; break;
          default:
            if (std::isalpha(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80)
              throw re_error(std::string("bad escape \\") + c + " at position " + std::to_string(start));
            literal += '\\';  // other escapes stay as written
            literal += c;
        }
      }
    }
    flush();
  }

  std::string expand(const std::string& s, const Regex::Match& m) const {
    std::string out;
    for (auto& p : pieces) out += p.group < 0 ? p.literal : m.group(s, p.group).value_or("");
    return out;
  }
};

Flags flags_of(const NodeInputs& in) {
  auto flag = [&](const char* name, bool def) { return in.has(name) && !in[name].is_none() ? in.get_bool(name) : def; };
  return Flags{flag("case_insensitive", true), flag("multiline", false), flag("dotall", false)};
}

// ---------------------------------------------------------------- nodes

const json kMultiline = {{"multiline", true}};

NodeDef string_node(const char* name, const char* display) {
  return NodeDef(name)
      .schema_v3()
      .display_name(display)
      .category("utils/string")
      .python_module("comfy_extras.nodes_string");
}

NodeOutput text(std::string s) { return NodeOutput({Value(json(std::move(s)))}); }

NodeDef StringConcatenate() {
  return string_node("StringConcatenate", "Concatenate")
      .input("string_a", "STRING", kMultiline)
      .input("string_b", "STRING", kMultiline)
      .input("delimiter", "STRING", {{"multiline", false}, {"default", ""}})
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return text(in.get_string("string_a") + in.get_string("delimiter") + in.get_string("string_b"));
      });
}

NodeDef StringSubstring() {
  return string_node("StringSubstring", "Substring")
      .input("string", "STRING", kMultiline)
      .input("start", "INT", json::object())
      .input("end", "INT", json::object())
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return text(substring(in.get_string("string"), in.get_int("start"), in.get_int("end")));
      });
}

NodeDef StringLength() {
  return string_node("StringLength", "Length")
      .input("string", "STRING", kMultiline)
      .output("INT", "length")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({Value(json(static_cast<int64_t>(decode_utf8(in.get_string("string")).size())))});
      });
}

NodeDef CaseConverter() {
  return string_node("CaseConverter", "Case Converter")
      .input("string", "STRING", kMultiline)
      .v3_combo("mode", [](const Services&) { return std::vector<std::string>{"UPPERCASE", "lowercase", "Capitalize", "Title Case"}; },
                json::object())
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const std::string &s = in.get_string("string"), &mode = in.get_string("mode");
        if (mode == "UPPERCASE") return text(upper(s));
        if (mode == "lowercase") return text(lower(s));
        if (mode == "Capitalize") return text(capitalize(s));
        if (mode == "Title Case") return text(title(s));
        return text(s);
      });
}

NodeDef StringTrim() {
  return string_node("StringTrim", "Trim")
      .input("string", "STRING", kMultiline)
      .v3_combo("mode", [](const Services&) { return std::vector<std::string>{"Both", "Left", "Right"}; }, json::object())
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const std::string &s = in.get_string("string"), &mode = in.get_string("mode");
        if (mode == "Both") return text(strip(s, true, true));
        if (mode == "Left") return text(strip(s, true, false));
        if (mode == "Right") return text(strip(s, false, true));
        return text(s);
      });
}

NodeDef StringReplace() {
  return string_node("StringReplace", "Replace")
      .input("string", "STRING", kMultiline)
      .input("find", "STRING", kMultiline)
      .input("replace", "STRING", kMultiline)
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return text(replace_all(in.get_string("string"), in.get_string("find"), in.get_string("replace")));
      });
}

NodeDef StringContains() {
  return string_node("StringContains", "Contains")
      .input("string", "STRING", kMultiline)
      .input("substring", "STRING", kMultiline)
      .input("case_sensitive", "BOOLEAN", {{"default", true}})
      .output("BOOLEAN", "contains")
      .run([](ExecutionContext&, const NodeInputs& in) {
        std::string s = in.get_string("string"), sub = in.get_string("substring");
        if (!in.get_bool("case_sensitive")) {
          s = lower(s);
          sub = lower(sub);
        }
        return NodeOutput({Value(json(s.find(sub) != std::string::npos))});
      });
}

NodeDef StringCompare() {
  return string_node("StringCompare", "Compare")
      .input("string_a", "STRING", kMultiline)
      .input("string_b", "STRING", kMultiline)
      .v3_combo("mode", [](const Services&) { return std::vector<std::string>{"Starts With", "Ends With", "Equal"}; },
                json::object())
      .input("case_sensitive", "BOOLEAN", {{"default", true}})
      .output("BOOLEAN")
      .run([](ExecutionContext&, const NodeInputs& in) {
        std::string a = in.get_string("string_a"), b = in.get_string("string_b");
        if (!in.get_bool("case_sensitive")) {
          a = lower(a);
          b = lower(b);
        }
        const std::string& mode = in.get_string("mode");
        if (mode == "Equal") return NodeOutput({Value(json(a == b))});
        if (mode == "Starts With") return NodeOutput({Value(json(starts_with(a, b)))});
        if (mode == "Ends With") return NodeOutput({Value(json(ends_with(a, b)))});
        return NodeOutput({Value()});  // ComfyUI returns None for an unknown mode
      });
}

NodeDef& regex_flags(NodeDef& def) {
  return def.input("case_insensitive", "BOOLEAN", {{"default", true}})
      .input("multiline", "BOOLEAN", {{"default", false}})
      .input("dotall", "BOOLEAN", {{"default", false}});
}

NodeDef RegexMatch() {
  NodeDef def = string_node("RegexMatch", "Regex Match");
  def.input("string", "STRING", kMultiline).input("regex_pattern", "STRING", kMultiline);
  regex_flags(def);
  return def.output("BOOLEAN", "matches").run([](ExecutionContext&, const NodeInputs& in) {
    bool result = false;
    try {
      Regex re(in.get_string("regex_pattern"), flags_of(in));
      result = re.search(in.get_string("string")).has_value();
    } catch (const ComfyError& e) {
      if (e.type() != "re.error") throw;
    }
    return NodeOutput({Value(json(result))});
  });
}

const std::vector<std::string> kExtractModes = {"First Match", "All Matches", "First Group", "All Groups"};

Value extract(const NodeInputs& in) {
  const std::string& s = in.get_string("string");
  const std::string& mode = in.get_string("mode");
  int64_t group_index = in.get_int("group_index");
  Regex re(in.get_string("regex_pattern"), flags_of(in));
  auto join = [](const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "\n" : "") + parts[i];
    return out;
  };
  if (mode == "First Match") {
    auto m = re.search(s);
    return Value(json(m ? *m->group(s, 0) : std::string()));
  }
  if (mode == "All Matches") {
    // re.findall: whole matches without groups, else the first group of each (unmatched: "").
    std::vector<std::string> parts;
    for (auto& m : re.find_all(s)) parts.push_back(m.group(s, re.groups() == 0 ? 0 : 1).value_or(""));
    return Value(json(join(parts)));
  }
  if (mode == "First Group") {
    auto m = re.search(s);
    if (!m || static_cast<int64_t>(re.groups()) < group_index) return Value(json(""));
    auto g = m->group(s, group_index);
    return g ? Value(json(*g)) : Value();  // a group that did not take part is None
  }
  if (mode == "All Groups") {
    std::vector<std::string> parts;
    for (auto& m : re.find_all(s)) {
      if (re.groups() == 0 || static_cast<int64_t>(re.groups()) < group_index) continue;
      auto g = m.group(s, group_index);
      if (!g)  // "\n".join() of a None
        throw ComfyError("TypeError", "sequence item " + std::to_string(parts.size()) + ": expected str instance, NoneType found");
      parts.push_back(*g);
    }
    return Value(json(join(parts)));
  }
  return Value(json(""));
}

NodeDef RegexExtract() {
  NodeDef def = string_node("RegexExtract", "Regex Extract");
  def.input("string", "STRING", kMultiline)
      .input("regex_pattern", "STRING", kMultiline)
      .v3_combo("mode", [](const Services&) { return kExtractModes; }, json::object());
  regex_flags(def);
  return def.input("group_index", "INT", {{"default", 1}, {"min", 0}, {"max", 100}})
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        try {
          return NodeOutput({extract(in)});
        } catch (const ComfyError& e) {
          if (e.type() != "re.error") throw;
          return text("");
        }
      });
}

NodeDef RegexReplace() {
  return string_node("RegexReplace", "Regex Replace")
      .description("Find and replace text using regex patterns.")
      .input("string", "STRING", kMultiline)
      .input("regex_pattern", "STRING", kMultiline)
      .input("replace", "STRING", kMultiline)
      .optional_input("case_insensitive", "BOOLEAN", {{"default", true}})
      .optional_input("multiline", "BOOLEAN", {{"default", false}})
      .optional_input("dotall", "BOOLEAN",
                      {{"tooltip",
                        "When enabled, the dot (.) character will match any character including newline characters. "
                        "When disabled, dots won't match newlines."},
                       {"default", false}})
      .optional_input("count", "INT",
                      {{"tooltip",
                        "Maximum number of replacements to make. Set to 0 to replace all occurrences (default). Set to 1 "
                        "to replace only the first match, 2 for the first two matches, etc."},
                       {"default", 0},
                       {"min", 0},
                       {"max", 100}})
      .output("STRING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const std::string& s = in.get_string("string");
        int64_t count = in.has("count") && !in["count"].is_none() ? in.get_int("count") : 0;
        Regex re(in.get_string("regex_pattern"), flags_of(in));
        Template repl(in.get_string("replace"), re);
        std::string out;
        size_t pos = 0;
        for (auto& m : re.find_all(s, count > 0 ? static_cast<size_t>(count) : 0)) {
          auto [b, e] = *m.spans[0];
          out += s.substr(pos, b - pos) + repl.expand(s, m);
          pos = e;
        }
        return text(out + s.substr(pos));
      });
}

}  // namespace

void register_string(Registry& r) {
  r.add(StringConcatenate());
  r.add(StringSubstring());
  r.add(StringLength());
  r.add(CaseConverter());
  r.add(StringTrim());
  r.add(StringReplace());
  r.add(StringContains());
  r.add(StringCompare());
  r.add(RegexMatch());
  r.add(RegexExtract());
  r.add(RegexReplace());
}

}  // namespace comfy
