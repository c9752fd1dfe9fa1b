// What `comfycpp run` and `comfycpp convert` accept as a workflow: an API prompt (or a POST
// /prompt body), a UI-format workflow, or a PNG / WebP image carrying ComfyUI's `prompt` and
// `workflow` metadata (PNG tEXt/iTXt/zTXt chunks or SaveAnimatedPNG's "comf" chunks; WebP EXIF
// entries "prompt:{...}", "workflow:{...}" as SaveAnimatedWEBP writes them).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "graph/registry.h"
#include "graph/services.h"

namespace comfy {

struct LoadedWorkflow {
  json prompt;                         // the API prompt to queue
  json extra_data = json::object();    // extra_pnginfo.workflow when a UI workflow came with it
  std::string source;                  // "api", "ui", "png prompt", "png workflow", "webp prompt", ...
};

// Reads `path`. The image's `prompt` is used when present (it is the API prompt that ran), else its
// `workflow` is converted as the frontend would. Throws WorkflowError for workflows that cannot be
// converted and std::runtime_error for unreadable files.
LoadedWorkflow load_workflow_file(const std::string& path, const Registry& registry, const Services& services);

// Only the reading part: the image metadata entries (key -> JSON text) of a PNG or WebP file.
std::map<std::string, std::string> image_metadata(const std::vector<uint8_t>& bytes, const std::string& path);

}  // namespace comfy
