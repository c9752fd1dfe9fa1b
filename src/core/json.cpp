#include "core/json.h"

#include <cmath>

namespace comfy {
namespace {

std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // nlohmann prints the shortest round-trip form with ".0" kept, as Python's repr does.
  std::string s = json(d).dump();
  // Python writes exponents with at least two digits ("1e-05", "1e+16"); so does nlohmann.
  return s;
}

std::string quote(const std::string& s) {
  // Python's repr prefers single quotes, and switches to double quotes when the text holds a
  // single quote and no double quote.
  bool has_single = s.find('\'') != std::string::npos;
  bool has_double = s.find('"') != std::string::npos;
  char q = (has_single && !has_double) ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == q || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  out += q;
  return out;
}

}  // namespace

std::string py_repr(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "None";
    case json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: return py_float(v.get<double>());
    case json::value_t::string: return quote(v.get<std::string>());
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + py_repr(v[i]);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (auto& [k, item] : v.items()) {
        out += (first ? "" : ", ") + quote(k) + ": " + py_repr(item);
        first = false;
      }
      return out + "}";
    }
    default: return v.dump();
  }
}

std::string py_str(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return py_repr(v);
}

}  // namespace comfy
