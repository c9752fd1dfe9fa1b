// Which models a workflow needs and where they are (issue 6, "Missing models"). A workflow in API
// or UI format names models in loader inputs (ckpt_name, lora_name, vae_name, clip_name,
// unet_name, control_net_name, UpscaleModelLoader's model_name, ...: the folder comes from the
// node's input declaration, else from a table of ComfyUI's input names) and, in UI format, in
// `models` lists at the top level and in node.properties.models ({name, url, directory, hash,
// hash_type}). Each is resolved in order: the exact path; the same file name elsewhere in that
// folder type, case-insensitively; the same hash anywhere in the model folders; a download from
// its url. The report says what was found where; nothing is ever substituted silently.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "models/folder_paths.h"

namespace comfy {

class DownloadManager;

struct ModelReference {
  std::string folder;      // model folder name ("checkpoints"), legacy names mapped
  std::string name;        // as the workflow names it ("sd15/model.safetensors")
  std::string url;         // from a `models` entry, or ""
  std::string hash;        // lower-case, or ""
  std::string hash_type;   // "sha256" (default when a hash is given) or "blake3"
  std::vector<std::string> nodes;  // ids of the nodes that use it
  std::vector<std::string> inputs; // "<node id>.<input>" entries
};

// Every model `workflow` references. `registry` (may be null) gives input folders and converts
// UI workflows; without it, or when a UI workflow cannot be converted, the loader-name table and
// the `models` lists still apply. Problems are appended to `warnings`.
std::vector<ModelReference> collect_model_references(const json& workflow, const Registry* registry,
                                                     const Services* services, std::vector<std::string>* warnings = nullptr);

struct ModelResolution {
  ModelReference ref;
  // found (exact path) | found_elsewhere (same name, other subfolder or letter case) |
  // found_by_hash | downloaded | download_queued | download_failed | missing | invalid
  std::string status;
  std::string path;         // the file found or downloaded
  std::string found_name;   // its name as the folder lists it (what the workflow should use)
  std::string download_id;
  std::string message;      // a sentence for people
  json to_json() const;
};

struct ResolveOptions {
  bool download = false;             // start downloads for missing models with a url
  bool wait_for_downloads = true;    // block until they finish (CLI); false: queued (server)
  DownloadManager* downloads = nullptr;
  // Digest of a file for "sha256" / "blake3"; default: SHA-256 streamed, BLAKE3 unsupported
  // (returns ""). The server and CLI pass the hash cache.
  std::function<std::string(const std::filesystem::path&, const std::string& algo)> hasher;
};

std::vector<ModelResolution> resolve_models(const std::vector<ModelReference>& refs, const FolderPaths& folders,
                                            const ResolveOptions& options);

// {"models": [...resolutions], "missing": N, "warnings": [...]}
json missing_models_report(const std::vector<ModelResolution>& resolutions, const std::vector<std::string>& warnings);

// A file's SHA-256 (lower-case hex), streamed; throws ComfyError when it cannot be read.
std::string sha256_of_file(const std::filesystem::path& file);

}  // namespace comfy
