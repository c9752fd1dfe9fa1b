// What the application hands to nodes, validators and combo listings: the long-lived objects
// it owns (folders, model cache, settings). Nothing here is global, so a test builds its own.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"

namespace comfy {

class FolderPaths;
class ModelCache;

struct ServiceOptions {
  bool disable_metadata = false;  // --disable-metadata: SaveImage writes no prompt/workflow chunks
  // --preview-method (none, auto, latent2rgb, taesd) and --preview-size: the sampler previews a
  // prompt gets unless its extra_data names another method (latent_preview.set_preview_method).
  std::string preview_method = "none";
  int preview_size = 512;
};

struct Services {
  FolderPaths* folders = nullptr;
  ModelCache* models = nullptr;
  ServiceOptions options;
  // The files of a model folder, for combo inputs (FolderPaths::get_filename_list); a function so
  // the graph room needs nothing from the models room.
  std::function<std::vector<std::string>(const std::string& folder)> list_folder;
  // A model file's identity for the outputs cache: [path, size, mtime] of the file a combo value
  // names, or null when it does not exist. Nodes whose inputs name model files re-run when the
  // file behind a name changes, without hashing gigabytes.
  std::function<json(const std::string& folder, const std::string& name)> model_fingerprint;
};

}  // namespace comfy
