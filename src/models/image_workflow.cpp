// Workflow metadata of PNG and WebP bytes (image_workflow.h).
#include "models/image_workflow.h"

#include <zlib.h>

#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace comfy {

namespace {

uint32_t be32(const std::string& b, size_t p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[p])) << 24 | static_cast<uint32_t>(static_cast<uint8_t>(b[p + 1])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[p + 2])) << 8 | static_cast<uint8_t>(b[p + 3]);
}
uint32_t le32(const std::string& b, size_t p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[p])) | static_cast<uint32_t>(static_cast<uint8_t>(b[p + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[p + 2])) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(b[p + 3])) << 24;
}

// tEXt is Latin-1; JSON wants UTF-8.
std::string latin1_to_utf8(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

// zlib data, inflated; at most 256 MiB out (a metadata chunk is far smaller).
std::string inflate_text(const std::string& data, const std::string& what) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) throw ComfyError("ValueError", what + ": cannot inflate a text chunk");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (out.size() > (256u << 20)) rc = Z_MEM_ERROR;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) throw ComfyError("ValueError", what + ": a compressed text chunk is corrupt");
  return out;
}

std::map<std::string, std::string> png_text(const std::string& b, const std::string& what) {
  std::map<std::string, std::string> out;
  size_t p = 8;
  while (p + 12 <= b.size()) {
    uint32_t len = be32(b, p);
    std::string type = b.substr(p + 4, 4);
    if (len > b.size() - p - 12) throw ComfyError("ValueError", what + ": the PNG is truncated (chunk " + type + ")");
    std::string d = b.substr(p + 8, len);
    p += 12 + len;
    if (type == "IEND") break;
    if (type != "tEXt" && type != "iTXt" && type != "zTXt" && type != "comf") continue;
    size_t zero = d.find('\0');
    if (zero == std::string::npos) continue;
    std::string key = d.substr(0, zero);
    if (type == "tEXt") {
      out.emplace(key, latin1_to_utf8(d.substr(zero + 1)));
    } else if (type == "comf") {
      out.emplace(key, d.substr(zero + 1));
    } else if (type == "zTXt") {
      if (zero + 2 <= d.size()) out.emplace(key, latin1_to_utf8(inflate_text(d.substr(zero + 2), what)));
    } else {  // iTXt: key\0 flag method language\0 translated\0 text
      if (zero + 3 > d.size()) continue;
      bool compressed = d[zero + 1] != 0;
      size_t q = zero + 3;
      for (int skip = 0; skip < 2 && q <= d.size(); ++skip) {
        size_t z = d.find('\0', q);
        q = z == std::string::npos ? d.size() + 1 : z + 1;
      }
      if (q > d.size()) continue;
      std::string text = d.substr(q);
      out.emplace(key, compressed ? inflate_text(text, what) : text);
    }
  }
  return out;
}

// The TIFF block of a WebP's EXIF chunk: its ASCII entries.
std::map<std::string, std::string> webp_text(const std::string& b) {
  std::map<std::string, std::string> out;
  std::string exif;
  size_t p = 12;
  while (p + 8 <= b.size()) {
    std::string type = b.substr(p, 4);
    uint32_t len = le32(b, p + 4);
    if (len > b.size() - p - 8) break;
    if (type == "EXIF") {
      exif = b.substr(p + 8, len);
      break;
    }
    p += 8 + len + (len & 1);
  }
  size_t base = exif.size() >= 6 && exif.compare(0, 6, std::string("Exif\0\0", 6)) == 0 ? 6 : 0;
  if (exif.size() < base + 8) return out;
  const std::string t = exif.substr(base);
  bool le = t[0] == 'I' && t[1] == 'I';
  if (!le && !(t[0] == 'M' && t[1] == 'M')) return out;
  auto u16 = [&](size_t q) -> uint32_t {
    uint32_t a = static_cast<uint8_t>(t[q]), c = static_cast<uint8_t>(t[q + 1]);
    return le ? a | c << 8 : a << 8 | c;
  };
  auto u32 = [&](size_t q) -> uint32_t { return le ? u16(q) | u16(q + 2) << 16 : u16(q) << 16 | u16(q + 2); };
  size_t ifd = u32(4);
  if (ifd + 2 > t.size()) return out;
  size_t count = u16(ifd);
  for (size_t i = 0; i < count && ifd + 2 + 12 * (i + 1) <= t.size(); ++i) {
    size_t e = ifd + 2 + 12 * i;
    if (u16(e + 2) != 2) continue;  // ASCII
    size_t len = u32(e + 4), at = len <= 4 ? e + 8 : u32(e + 8);
    if (len == 0 || at > t.size() || len > t.size() - at) continue;
    std::string text = t.substr(at, len - 1);
    auto colon = text.find(':');
    if (colon != std::string::npos) out.emplace(text.substr(0, colon), text.substr(colon + 1));
  }
  return out;
}

json parse(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    throw ComfyError("ValueError", what + " is not valid JSON: " + e.what());
  }
}

}  // namespace

bool is_png_bytes(const std::string& b) { return b.size() >= 8 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0; }
bool is_webp_bytes(const std::string& b) {
  return b.size() >= 12 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0;
}

std::map<std::string, std::string> image_text_metadata(const std::string& bytes, const std::string& what) {
  if (is_png_bytes(bytes)) return png_text(bytes, what);
  if (is_webp_bytes(bytes)) return webp_text(bytes);
  throw ComfyError("ValueError", what + " is not a PNG or WebP image");
}

json image_workflow_document(const std::string& bytes, const std::string& what) {
  auto meta = image_text_metadata(bytes, what);
  auto prompt = meta.find("prompt"), workflow = meta.find("workflow");
  if (prompt == meta.end() && workflow == meta.end())
    throw ComfyError("ValueError", what + " carries no ComfyUI prompt or workflow metadata");
  if (prompt == meta.end()) return parse(workflow->second, what + ": its \"workflow\" metadata");
  json doc{{"prompt", parse(prompt->second, what + ": its \"prompt\" metadata")}};
  json extra = json::object();
  for (auto& [k, v] : meta) {
    if (k == "prompt") continue;
    try {
      extra[k] = json::parse(v);
    } catch (const std::exception&) {
    }
  }
  if (!extra.empty()) doc["extra_data"] = json{{"extra_pnginfo", extra}};
  return doc;
}

}  // namespace comfy
