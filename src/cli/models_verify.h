// `comfycpp models verify` and `comfycpp models dedupe` (issue 6), and the walk over every model
// file that they and `models list` share:
//   models verify [FOLDER|FILE]   headers parse (safetensors, GGUF, pickle through the restricted
//       reader) with data inside the file; a cached SHA-256 still matches (bit rot: the content
//       changed while size and mtime did not); a `<file>.sha256` sidecar (sha256sum format)
//       matches; `.part` files are reported as incomplete downloads. Exit 1 when a check failed.
//   models dedupe [--link]        identical files across every folder and root (extra_model_paths
//       included): grouped by size, then SHA-256 (through the hash cache); bytes reclaimable;
//       --link replaces each copy with a hard link to the first (same filesystem only; a link to a
//       temporary name beside the copy, compared byte for byte, then renamed over it).
#pragma once
#include <CLI/CLI.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "models/folder_paths.h"

namespace comfy {

struct ModelFileEntry {
  std::string folder;  // the model folder ("checkpoints", ...)
  std::string name;    // relative to the search directory, forward slashes
  std::filesystem::path path;
};

// Files with a model extension (ComfyUI's, plus .gguf) under every search directory of `folder`
// ("" for every model folder), recursively; with `include_part`, `.part` downloads too.
// A file reachable from two folders or roots is listed once (the first).
std::vector<ModelFileEntry> walk_model_files(const FolderPaths& folders, const std::string& folder = "",
                                             bool include_part = false);

// The .gguf files (relative names, sorted) of a folder where ComfyUI-GGUF looks for them
// (diffusion_models/unet and text_encoders/clip); empty for other folders.
std::vector<std::string> gguf_file_list(const FolderPaths& folders, const std::string& folder);

void add_verify_commands(CLI::App& models, int* exit_code);

}  // namespace comfy
