// Prompt weights as comfy/sd1_clip.py computes them (see prompt_weights.h). The special
// characters are all ASCII, so working on UTF-8 bytes cuts the text where Python's code-point
// strings would.
#include "text/prompt_weights.h"

#include <charconv>
#include <cstdlib>

#include "text/py_str.h"

namespace comfy {
namespace {

// escape_important / unescape_important: \) and \( are hidden from the parser as "\0\1", "\0\2".
std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

const std::string kEscClose("\0\1", 2);
const std::string kEscOpen("\0\2", 2);

std::string escape_important(std::string_view text) {
  return replace_all(replace_all(std::string(text), "\\)", kEscClose), "\\(", kEscOpen);
}

std::string unescape_important(std::string_view text) {
  return replace_all(replace_all(std::string(text), kEscClose, ")"), kEscOpen, "(");
}

// parse_parentheses: top-level groups "( ... )" (nesting kept inside) and the text between them.
std::vector<std::string> parse_parentheses(std::string_view s) {
  std::vector<std::string> result;
  std::string current;
  int nesting = 0;
  for (char c : s) {
    if (c == '(') {
      if (nesting == 0) {
        if (!current.empty()) result.push_back(current);
        current.assign(1, '(');
      } else {
        current += c;
      }
      ++nesting;
    } else if (c == ')') {
      --nesting;
      if (nesting == 0) {
        result.push_back(current + ")");
        current.clear();
      } else {
        current += c;
      }
    } else {
      current += c;
    }
  }
  if (!current.empty()) result.push_back(current);
  return result;
}

void token_weights(std::string_view s, double current, std::vector<WeightedSegment>& out) {
  for (const std::string& item : parse_parentheses(s)) {
    if (item.size() >= 2 && item.front() == '(' && item.back() == ')') {
      std::string inner = item.substr(1, item.size() - 2);
      double weight = current * 1.1;
      const auto colon = inner.rfind(':');
      if (colon != std::string::npos && colon > 0) {
        if (auto w = parse_python_float(std::string_view(inner).substr(colon + 1))) {
          weight = *w;
          inner.resize(colon);
        }
      }
      token_weights(inner, weight, out);
    } else {
      out.push_back({item, current});
    }
  }
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// digitpart: digit (["_"] digit)*, appended to `out` without underscores.
bool digit_part(std::string_view s, std::size_t& i, std::string& out) {
  if (i >= s.size() || !is_digit(s[i])) return false;
  out += s[i++];
  while (i < s.size()) {
    if (is_digit(s[i])) {
      out += s[i++];
    } else if (s[i] == '_' && i + 1 < s.size() && is_digit(s[i + 1])) {
      out += s[i + 1];
      i += 2;
    } else {
      break;
    }
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if ((a[i] | 0x20) != b[i]) return false;
  return true;
}

}  // namespace

std::optional<double> parse_python_float(std::string_view text) {
  // Unicode whitespace counts as space; any other non-ASCII character makes it invalid.
  std::string ascii;
  for (char32_t c : py::decode_utf8(text)) {
    if (py::isspace(c)) ascii += ' ';
    else if (c < 0x80) ascii += static_cast<char>(c);
    else return std::nullopt;
  }
  const std::string s = py::strip(ascii, " \t\n\v\f\r");
  std::size_t i = 0;
  std::string clean;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    if (s[i] == '-') clean += '-';
    ++i;
  }
  const std::string_view rest = std::string_view(s).substr(i);
  double value = 0;
  if (iequals(rest, "inf") || iequals(rest, "infinity") || iequals(rest, "nan")) {
    clean += rest;
  } else {
    bool int_part = digit_part(s, i, clean);
    bool frac_part = false;
    if (i < s.size() && s[i] == '.') {
      clean += '.';
      ++i;
      frac_part = digit_part(s, i, clean);
    }
    if (!int_part && !frac_part) return std::nullopt;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
      clean += 'e';
      ++i;
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) clean += s[i++];
      if (!digit_part(s, i, clean)) return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
  }
  auto [end, ec] = std::from_chars(clean.data(), clean.data() + clean.size(), value);
  if (end != clean.data() + clean.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    // Python gives +-inf on overflow and +-0 on underflow; strtod does too (the text is plain
    // ASCII digits here, so the locale's decimal point is the only thing it could disagree on,
    // and comfy.cpp never changes LC_NUMERIC).
    value = std::strtod(clean.c_str(), nullptr);
  } else if (ec != std::errc()) {
    return std::nullopt;
  }
  return value;
}

std::string unescape_prompt(std::string_view text) { return unescape_important(escape_important(text)); }

std::vector<WeightedSegment> parse_prompt_weights(std::string_view text) {
  std::vector<WeightedSegment> out;
  token_weights(escape_important(text), 1.0, out);
  for (auto& seg : out) seg.text = unescape_important(seg.text);
  return out;
}

}  // namespace comfy
