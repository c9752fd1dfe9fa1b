// The model catalog (issue 6, "Catalog"): a JSON list of known models that can be searched and
// installed by name. Shipped as data/models/catalog.json, extended (and overridden by name) by the
// user: <user directory>/catalog.json, the files or folders of *.json named under the key
// `catalogs` in extra_model_paths.yaml, and files given on the command line (--catalog) or in
// $COMFYCPP_CATALOG (colon-separated).
//
// A catalog file is {"models": [entry, ...]} (or a bare array). An entry:
//   name         unique key (case-insensitive), e.g. "sd15-pruned-emaonly"
//   type         checkpoint | lora | vae | controlnet | upscale_model | embedding | vae_approx | ...
//   base         SD1 | SD2 | SDXL | ... (free text)
//   folder       the ComfyUI model folder it installs into ("checkpoints", "vae", ...)
//   filename     the name inside that folder, subfolders allowed ("sd15/x.safetensors"); "..",
//                absolute paths, backslashes and hidden parts are refused when the file is read
//   url          http(s)
//   size         bytes, or null when unknown
//   sha256       64 hex digits, or null when unknown: never guessed
//   source       where size and sha256 were read (a page or an LFS pointer), or null
//   description  free text
// Installing queues a download into the folder with the entry's sha256 and size, which the download
// manager verifies; a file already there with that hash is not downloaded again.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "models/folder_paths.h"

namespace comfy {

class DownloadManager;

struct CatalogEntry {
  std::string name, type, base, folder, filename, url, description;
  std::optional<uint64_t> size;
  std::string sha256;   // lower-case hex, or "" when unknown
  std::string source;   // "" when unknown
  std::string origin;   // the catalog file it came from
  json to_json() const;
};

// Parses one catalog document. A bad entry is an error naming `origin` and the entry (its index
// and name): thrown as ComfyError (ValueError) when `errors` is null, else appended there and the
// entry skipped.
std::vector<CatalogEntry> parse_catalog(const json& doc, const std::string& origin,
                                        std::vector<std::string>* errors = nullptr);
// Reads and parses a catalog file; throws ComfyError when it cannot be read or is not JSON.
std::vector<CatalogEntry> load_catalog_file(const std::filesystem::path& file,
                                            std::vector<std::string>* errors = nullptr);

class ModelCatalog {
 public:
  // Adds entries; one whose name (case-insensitive) is already there replaces it in place.
  void add(const std::vector<CatalogEntry>& entries);
  const std::vector<CatalogEntry>& entries() const { return entries_; }
  // Entries matching every whitespace-separated word of `text` (case-insensitive substrings of
  // name, filename, type, base, folder and description); best first: exact name, then words found
  // in the name, then elsewhere. Empty text: every entry.
  std::vector<CatalogEntry> search(const std::string& text) const;
  // The entry of that name (case-insensitive), else the one with that filename; null when none.
  const CatalogEntry* find(const std::string& name) const;

  // The shipped catalog (data/models/catalog.json, when found), then the user's files: <user
  // directory>/catalog.json, the `catalogs` entries of the folder registry (extra_model_paths),
  // $COMFYCPP_CATALOG, then `extra_files`. Problems with the user's files (unreadable, bad
  // entries) go to `warnings` and do not stop the others.
  static ModelCatalog load(const FolderPaths& folders, const std::vector<std::filesystem::path>& extra_files = {},
                           std::vector<std::string>* warnings = nullptr);

 private:
  std::vector<CatalogEntry> entries_;
};

// Adds "catalog": <entry name> (or null) to each model of a missing-models report
// (missing_models_report) that is still missing and whose folder and file name a catalog entry
// has: a hint ("comfycpp models catalog install NAME"), never an automatic substitution.
void annotate_missing_with_catalog(json& report, const ModelCatalog& catalog);

struct CatalogInstall {
  // present (already there with the right hash, or by name when the hash is unknown) | queued |
  // completed | failed
  std::string status;
  std::string download_id;
  std::string path;
  std::string message;
  json to_json() const;
};

// Where the entry's file is (or would be) in its folder: the existing file or "".
std::string catalog_entry_path(const CatalogEntry& entry, const FolderPaths& folders);

// Installs `entry`: nothing to do when its file is present with the entry's sha256 (or present at
// all when the sha256 is unknown); a file there with another hash is not replaced (failed, with a
// message); else a download is queued into the entry's folder with its sha256 and size. `hasher`
// gives a file's SHA-256 (default: sha256_of_file). Throws ComfyError when the download manager
// refuses the request (host, extension, free space).
CatalogInstall install_catalog_entry(const CatalogEntry& entry, const FolderPaths& folders, DownloadManager& downloads,
                                     const std::function<std::string(const std::filesystem::path&)>& hasher = {});

}  // namespace comfy
