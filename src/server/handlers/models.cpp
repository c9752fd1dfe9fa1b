// GET /models, /models/{folder}, /experiment/models (+ /{folder}).
#include <algorithm>

#include "server/handlers/handlers.h"

namespace comfy::server {

namespace fs = std::filesystem;

Response get_models(Context& ctx, Request&) {
  json out = json::array();
  for (auto& name : ctx.folders.folder_names()) out.push_back(name);
  return Response::json_body(out);
}

Response get_models_folder(Context& ctx, Request& req) {
  std::string folder = req.param("folder");
  // An exact key of the table: the legacy aliases (clip, unet) are 404 here, as in ComfyUI.
  auto names = ctx.folders.folder_names();
  if (std::find(names.begin(), names.end(), folder) == names.end()) return Response::empty(404);
  json out = json::array();
  for (auto& f : ctx.folders.get_filename_list(folder)) out.push_back(f);
  return Response::json_body(out);
}

Response get_experiment_models(Context& ctx, Request&) {
  json out = json::array();
  for (auto& name : ctx.folders.folder_names()) {
    if (name == "configs" || name == "custom_nodes") continue;
    json dirs = json::array();
    for (auto& p : ctx.folders.get_folder_paths(name)) dirs.push_back(p.string());
    out.push_back(json{{"name", name}, {"folders", dirs}});
  }
  return Response::json_body(out);
}

Response get_experiment_models_folder(Context& ctx, Request& req) {
  std::string folder = req.param("folder");
  auto names = ctx.folders.folder_names();
  if (std::find(names.begin(), names.end(), folder) == names.end()) return Response::empty(404);
  static const std::vector<std::string> kModelExts = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"};
  json out = json::array();
  auto dirs = ctx.folders.get_folder_paths(folder);
  for (size_t index = 0; index < dirs.size(); ++index) {
    std::error_code ec;
    if (!fs::is_directory(dirs[index], ec)) continue;
    fs::recursive_directory_iterator it(dirs[index], fs::directory_options::follow_directory_symlink |
                                                         fs::directory_options::skip_permission_denied, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file(ec)) continue;
      std::string ext = it->path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (std::find(kModelExts.begin(), kModelExts.end(), ext) == kModelExts.end()) continue;
      out.push_back(json{{"name", it->path().lexically_relative(dirs[index]).string()},
                         {"pathIndex", index},
                         {"modified", file_time_seconds(it->path(), false)},
                         {"created", file_time_seconds(it->path(), true)},
                         {"size", it->file_size(ec)}});
    }
  }
  return Response::json_body(out);
}

}  // namespace comfy::server
