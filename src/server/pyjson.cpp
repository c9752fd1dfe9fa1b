#include "server/pyjson.h"

#include <cmath>
#include <cstdio>

namespace comfy::server {
namespace {

void put_u16(std::string& out, unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", v);
  out += buf;
}

// Python escapes with ensure_ascii=True: every code point above 0x7f becomes \uXXXX (a surrogate
// pair above the BMP). Invalid UTF-8 cannot come from nlohmann (it throws on parse), so any stray
// byte is escaped as itself.
void put_string(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) put_u16(out, c);
          else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    unsigned cp = 0;
    int len = 0;
    if ((c & 0xe0) == 0xc0) cp = c & 0x1f, len = 2;
    else if ((c & 0xf0) == 0xe0) cp = c & 0x0f, len = 3;
    else if ((c & 0xf8) == 0xf0) cp = c & 0x07, len = 4;
    if (len == 0 || i + len > s.size()) {
      put_u16(out, c);
      ++i;
      continue;
    }
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      put_u16(out, 0xd800 + (cp >> 10));
      put_u16(out, 0xdc00 + (cp & 0x3ff));
    } else {
      put_u16(out, cp);
    }
    i += len;
  }
  out += '"';
}

void put(std::string& out, const json& v) {
  switch (v.type()) {
    case json::value_t::null: out += "null"; break;
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) out += "NaN";
      else if (std::isinf(d)) out += d > 0 ? "Infinity" : "-Infinity";
      else out += v.dump();  // shortest round trip, ".0" kept: Python's float repr
      break;
    }
    case json::value_t::string: put_string(out, v.get_ref<const std::string&>()); break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (auto& item : v) {
        if (!first) out += ", ";
        first = false;
        put(out, item);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto& [k, item] : v.items()) {
        if (!first) out += ", ";
        first = false;
        put_string(out, k);
        out += ": ";
        put(out, item);
      }
      out += '}';
      break;
    }
    default: out += v.dump();
  }
}

}  // namespace

std::string py_dumps(const json& value) {
  std::string out;
  put(out, value);
  return out;
}

}  // namespace comfy::server
