#include "cli/workflow_file.h"

#include <stdexcept>

#include "graph/ui_workflow.h"
#include "io/image.h"
#include "io/png.h"
#include "io/webp.h"
#include "models/image_workflow.h"

namespace comfy {
namespace {

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

// One reader of workflows in images for the CLI and the server (models/image_workflow.h).
std::map<std::string, std::string> image_metadata(const std::vector<uint8_t>& bytes, const std::string& path) {
  return image_text_metadata(std::string(bytes.begin(), bytes.end()), path);
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
