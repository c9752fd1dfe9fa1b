// GET /models/info?folder=FOLDER&filename=NAME: what the web UI's model library shows for one
// file, read from its header only (nothing is loaded): size, format, the safetensors
// `__metadata__` (kohya ss_*, modelspec.*), a title and trigger words taken from it, tensor count,
// dtypes and parameters, the kind its folder stands for, the family when the metadata or the
// cross-attention width tells it, and the SHA-256 when the hash cache already holds it (hashing
// is never started here). The server has no torch, so the shape-based detection of
// `comfycpp models info` (models/model_detection.h) is not run; the header rules both share are
// in models/model_inspection.h.
#include <spdlog/spdlog.h>

#include "models/model_inspection.h"
#include "server/handlers/handlers.h"
#include "store/hash_cache.h"

namespace comfy::server {

namespace fs = std::filesystem;

namespace {

Response error(int status, const std::string& message) { return Response::json_body(json{{"error", message}}, status); }

}  // namespace

Response get_model_info(Context& ctx, Request& req) {
  const std::string folder = FolderPaths::map_legacy(req.query_value("folder").value_or(""));
  const std::string name = req.query_value("filename").value_or("");
  if (folder.empty() || name.empty()) return error(400, "give folder (a model folder name) and filename");
  if (!ctx.folders.has_folder(folder)) return error(404, "unknown model folder '" + folder + "'");
  if (name.find("..") != std::string::npos || name[0] == '/' || name.find('\\') != std::string::npos)
    return error(400, "'" + name + "' is not a file name inside models/" + folder);
  auto file = ctx.folders.get_full_path(folder, name);
  std::error_code ec;
  if (!file || !fs::is_regular_file(*file, ec)) return error(404, "no file '" + name + "' in models/" + folder);
  bool inside = false;
  for (const auto& dir : ctx.folders.get_folder_paths(folder)) inside = inside || is_within(dir, *file);
  if (!inside) return error(400, "'" + name + "' is not inside models/" + folder);

  const uint64_t size = fs::file_size(*file, ec);
  const std::string ext = lower_extension(*file);
  json j{{"folder", folder},       {"name", name},        {"path", file->string()}, {"size", size},
         {"modified", file_time_seconds(*file, false)}, {"format", nullptr},     {"metadata", nullptr},
         {"tensors", nullptr},     {"dtypes", nullptr},   {"parameters", nullptr},
         {"kind", kind_of_folder(folder)},
         {"family", nullptr},      {"family_from", nullptr}, {"title", nullptr},
         {"trigger_words", json::array()}, {"sha256", nullptr}, {"autov2", nullptr}, {"error", nullptr}};
  if (ext == ".safetensors" || ext == ".sft") {
    j["format"] = "safetensors";
    try {
      const SafetensorsHeader header = read_safetensors_header(*file);
      const TensorSummary summary = summarize_tensors(header.tensors);
      j["metadata"] = header.metadata;
      j["tensors"] = summary.count;
      j["dtypes"] = summary.dtypes;
      j["parameters"] = summary.parameters;
      const FamilyGuess family = lora_family(header.tensors, header.metadata);
      if (!family.family.empty()) {
        j["family"] = family.family;
        j["family_from"] = family.from;
      }
      j["title"] = model_title(header.metadata);
      j["trigger_words"] = trigger_words(header.metadata);
    } catch (const std::exception& e) {
      j["error"] = e.what();
    }
  } else if (ext == ".gguf") {
    j["format"] = "gguf";
  } else {
    j["format"] = "pickle";
  }
  try {
    HashCache cache(ctx.folders.user_directory() / "__comfycpp" / "model_hashes.sqlite");
    if (auto d = cache.get(*file, "sha256")) {
      j["sha256"] = *d;
      j["autov2"] = d->substr(0, 10);
    }
  } catch (const std::exception& e) {
    spdlog::debug("model hash cache unavailable: {}", e.what());
  }
  return Response::json_body(j);
}

}  // namespace comfy::server
