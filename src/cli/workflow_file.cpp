#include "cli/workflow_file.h"

#include <stdexcept>

#include "graph/ui_workflow.h"
#include "io/image.h"
#include "io/png.h"
#include "io/webp.h"

namespace comfy {
namespace {

// tEXt text is Latin-1; JSON needs UTF-8.
std::string latin1_to_utf8(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] < 0x80) {
      out += static_cast<char>(p[i]);
    } else {
      out += static_cast<char>(0xC0 | (p[i] >> 6));
      out += static_cast<char>(0x80 | (p[i] & 0x3F));
    }
  }
  return out;
}

std::map<std::string, std::string> png_metadata(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::map<std::string, std::string> out;
  bool compressed = false;
  for (auto& c : io::png_chunks(bytes)) {
    const auto& d = c.data;
    size_t zero = 0;
    while (zero < d.size() && d[zero] != 0) ++zero;
    if (zero >= d.size()) continue;
    std::string key(d.begin(), d.begin() + static_cast<long>(zero));
    if (c.type == "tEXt") {
      out.emplace(key, latin1_to_utf8(d.data() + zero + 1, d.size() - zero - 1));
    } else if (c.type == "comf") {  // SaveAnimatedPNG: "<key>\0<json>" after the image data
      out.emplace(key, std::string(d.begin() + static_cast<long>(zero) + 1, d.end()));
    } else if (c.type == "iTXt") {
      // keyword\0 flag method language\0 translated\0 text (UTF-8)
      if (zero + 2 >= d.size()) continue;
      if (d[zero + 1] != 0) {
        compressed = true;
        continue;
      }
      size_t p = zero + 3;
      for (int skip = 0; skip < 2; ++skip) {
        while (p < d.size() && d[p] != 0) ++p;
        ++p;
      }
      if (p <= d.size()) out.emplace(key, std::string(d.begin() + static_cast<long>(p), d.end()));
    } else if (c.type == "zTXt") {
      compressed = true;
    }
  }
  if (compressed) {  // let the decoder inflate them
    io::DecodedImage img = io::decode_png(bytes, path);
    for (auto& [k, v] : img.text) out.emplace(k, v);
  }
  return out;
}

json parse_json(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw std::runtime_error(what + " is not valid JSON: " + e.what());
  }
}

LoadedWorkflow from_document(json doc, const std::string& kind, const Registry& registry, const Services& services) {
  LoadedWorkflow out;
  if (is_ui_workflow(doc)) {
    out.prompt = ui_workflow_to_prompt(doc, registry, services);
    // As the frontend queues it: the workflow travels along and SaveImage embeds it.
    out.extra_data["extra_pnginfo"] = json{{"workflow", doc}};
    out.source = kind.empty() ? "ui" : kind + " workflow";
    return out;
  }
  // The body of a POST /prompt: its prompt and extra_data.
  if (doc.is_object() && doc.contains("prompt") && doc["prompt"].is_object()) {
    if (doc.contains("extra_data") && doc["extra_data"].is_object()) out.extra_data = doc["extra_data"];
    doc = json(doc["prompt"]);
  }
  if (!doc.is_object()) throw std::runtime_error("workflow must be a JSON object of nodes (API format) or a UI workflow");
  out.prompt = std::move(doc);
  out.source = kind.empty() ? "api" : kind + " prompt";
  return out;
}

}  // namespace

std::map<std::string, std::string> image_metadata(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (io::is_png(bytes)) return png_metadata(bytes, path);
  std::map<std::string, std::string> out;
  if (io::is_webp(bytes)) {
    std::vector<uint8_t> exif = io::webp_exif(bytes);
    if (exif.empty()) return out;
    // SaveAnimatedWEBP: "prompt:<json>" in 0x0110, "<key>:<json>" from 0x010F down.
    for (auto& [tag, text] : io::exif_ascii_entries(exif)) {
      auto colon = text.find(':');
      if (colon == std::string::npos) continue;
      out.emplace(text.substr(0, colon), text.substr(colon + 1));
    }
  }
  return out;
}

LoadedWorkflow load_workflow_file(const std::string& path, const Registry& registry, const Services& services) {
  std::vector<uint8_t> bytes;
  try {
    bytes = io::read_file(path);
  } catch (const std::exception&) {
    throw std::runtime_error("cannot read workflow file: " + path);
  }
  bool png = io::is_png(bytes), webp = io::is_webp(bytes);
  if (png || webp) {
    std::string kind = png ? "png" : "webp";
    std::map<std::string, std::string> meta = image_metadata(bytes, path);
    auto prompt = meta.find("prompt"), workflow = meta.find("workflow");
    if (prompt == meta.end() && workflow == meta.end())
      throw std::runtime_error(path + ": the image carries no ComfyUI prompt or workflow metadata");
    if (prompt != meta.end()) {
      LoadedWorkflow out = from_document(parse_json(prompt->second, path + ": the \"prompt\" metadata"), kind,
                                         registry, services);
      if (is_ui_workflow(parse_json(prompt->second, path))) return out;  // an odd file: a UI workflow under "prompt"
      // Everything else the image carries goes back into the next image, as extra_pnginfo.
      json extra = json::object();
      for (auto& [k, v] : meta) {
        if (k == "prompt") continue;
        try {
          extra[k] = json::parse(v);
        } catch (const json::parse_error&) {
        }
      }
      if (!extra.empty()) out.extra_data["extra_pnginfo"] = extra;
      return out;
    }
    json doc = parse_json(workflow->second, path + ": the \"workflow\" metadata");
    if (!is_ui_workflow(doc)) throw std::runtime_error(path + ": the \"workflow\" metadata is not a UI workflow");
    return from_document(std::move(doc), kind, registry, services);
  }
  std::string text(bytes.begin(), bytes.end());
  return from_document(parse_json(text, "workflow " + path), "", registry, services);
}

}  // namespace comfy
