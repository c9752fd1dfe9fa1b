#include "server/multipart.h"
#include "core/text.h"

#include <algorithm>
#include <stdexcept>

namespace comfy::server {

const FormPart* Multipart::get(const std::string& name) const {
  for (auto& p : parts)
    if (p.name == name) return &p;
  return nullptr;
}

std::optional<std::string> Multipart::value(const std::string& name) const {
  if (auto p = get(name)) return p->data;
  return std::nullopt;
}

namespace {

// The value of `key=` in a header such as `form-data; name="image"; filename="a.png"`.
std::optional<std::string> header_param(const std::string& header, const std::string& key) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t semi = header.find(';', pos);
    std::string item = header.substr(pos, semi == std::string::npos ? std::string::npos : semi - pos);
    size_t b = item.find_first_not_of(" \t");
    if (b != std::string::npos) item = item.substr(b);
    auto eq = item.find('=');
    if (eq != std::string::npos && ascii_lower(item.substr(0, eq)) == key) {
      std::string v = item.substr(eq + 1);
      if (v.size() >= 2 && v.front() == '"') {
        // quoted-string: up to the closing quote, with \" escapes
        std::string out;
        size_t i = 1;
        for (; i < v.size() && v[i] != '"'; ++i) {
          if (v[i] == '\\' && i + 1 < v.size()) ++i;
          out += v[i];
        }
        return out;
      }
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
      return v;
    }
    if (semi == std::string::npos) break;
    pos = semi + 1;
  }
  return std::nullopt;
}

}  // namespace

Multipart parse_multipart(const Request& req) {
  const std::string* ct = req.header("content-type");
  if (!ct || ascii_lower(*ct).rfind("multipart/form-data", 0) != 0) {
    // aiohttp's post() of a non-multipart body yields no "image" field: an empty form.
    return Multipart{};
  }
  auto boundary = header_param(*ct, "boundary");
  if (!boundary || boundary->empty()) throw std::runtime_error("multipart: no boundary");
  const std::string& body = req.body;
  std::string delim = "--" + *boundary;
  Multipart out;
  size_t pos = body.find(delim);
  if (pos == std::string::npos) throw std::runtime_error("multipart: boundary not found");
  while (true) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) break;  // the closing delimiter
    if (body.compare(pos, 2, "\r\n") != 0) throw std::runtime_error("multipart: malformed delimiter");
    pos += 2;
    size_t headers_end = body.find("\r\n\r\n", pos);
    if (headers_end == std::string::npos) throw std::runtime_error("multipart: unterminated part headers");
    FormPart part;
    size_t line = pos;
    while (line < headers_end) {
      size_t eol = body.find("\r\n", line);
      if (eol == std::string::npos || eol > headers_end) eol = headers_end;
      std::string h = body.substr(line, eol - line);
      auto colon = h.find(':');
      if (colon != std::string::npos && ascii_lower(h.substr(0, colon)) == "content-disposition") {
        std::string v = h.substr(colon + 1);
        part.name = header_param(v, "name").value_or("");
        if (auto f = header_param(v, "filename")) part.is_file = true, part.filename = *f;
      }
      line = eol + 2;
    }
    size_t data_start = headers_end + 4;
    size_t next = body.find("\r\n" + delim, data_start);
    if (next == std::string::npos) throw std::runtime_error("multipart: unterminated part");
    part.data = body.substr(data_start, next - data_start);
    out.parts.push_back(std::move(part));
    pos = next + 2;
  }
  return out;
}

}  // namespace comfy::server
