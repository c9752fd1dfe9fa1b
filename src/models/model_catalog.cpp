// The model catalog (model_catalog.h).
#include "models/model_catalog.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/text.h"
#include "core/error.h"
#include "models/missing_models.h"
#include "models/model_download.h"
#include "text/data_paths.h"

namespace comfy {

namespace fs = std::filesystem;

namespace {

json opt_string(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// "" when `filename` may be used inside a model folder, else why not.
std::string filename_problem(const std::string& filename) {
  if (filename.empty()) return "it has no filename";
  if (filename[0] == '/' || (filename.size() > 1 && filename[1] == ':')) return "its filename is an absolute path";
  if (filename.find('\\') != std::string::npos) return "its filename has a backslash";
  if (filename.find('\0') != std::string::npos) return "its filename has a NUL byte";
  size_t start = 0;
  while (true) {
    size_t end = filename.find('/', start);
    std::string part = filename.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part == "..") return "its filename leaves the model folder ('..')";
    if (part.empty() || part[0] == '.') return "its filename has an empty or hidden part";
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(ascii_lower(text));
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

json CatalogEntry::to_json() const {
  return json{{"name", name},
              {"type", type},
              {"base", base},
              {"folder", folder},
              {"filename", filename},
              {"url", url},
              {"size", size ? json(*size) : json(nullptr)},
              {"sha256", opt_string(sha256)},
              {"source", opt_string(source)},
              {"description", description},
              {"catalog", origin}};
}

std::vector<CatalogEntry> parse_catalog(const json& doc, const std::string& origin, std::vector<std::string>* errors) {
  const json* list = &doc;
  if (doc.is_object()) {
    if (!doc.contains("models") || !doc["models"].is_array())
      throw ComfyError("ValueError", "the catalog " + origin + " must be a JSON object with a \"models\" list");
    list = &doc["models"];
  } else if (!doc.is_array()) {
    throw ComfyError("ValueError", "the catalog " + origin + " must be a JSON object with a \"models\" list");
  }
  std::vector<CatalogEntry> out;
  size_t index = 0;
  for (const auto& e : *list) {
    std::string label = "entry " + std::to_string(index++);
    try {
      if (!e.is_object()) throw std::runtime_error("it is not a JSON object");
      auto text = [&](const char* key, bool required) -> std::string {
        if (!e.contains(key) || e[key].is_null()) {
          if (required) throw std::runtime_error(std::string("it has no ") + key);
          return "";
        }
        if (!e[key].is_string()) throw std::runtime_error(std::string(key) + " must be a string");
        return e[key].get<std::string>();
      };
      CatalogEntry c;
      c.name = text("name", true);
      label += " ('" + c.name + "')";
      if (c.name.empty()) throw std::runtime_error("its name is empty");
      c.type = text("type", false);
      c.base = text("base", false);
      c.folder = text("folder", true);
      if (c.folder.empty()) throw std::runtime_error("its folder is empty");
      c.filename = text("filename", true);
      if (auto why = filename_problem(c.filename); !why.empty()) throw std::runtime_error(why);
      c.url = text("url", true);
      try {
        url_host(c.url);
      } catch (const ComfyError& err) {
        throw std::runtime_error(err.what());
      }
      if (e.contains("size") && !e["size"].is_null()) {
        if (!e["size"].is_number_unsigned()) throw std::runtime_error("size must be a number of bytes or null");
        c.size = e["size"].get<uint64_t>();
      }
      c.sha256 = ascii_lower(text("sha256", false));
      if (!c.sha256.empty() &&
          (c.sha256.size() != 64 || c.sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
        throw std::runtime_error("sha256 must be 64 hex digits or null");
      c.source = text("source", false);
      c.description = text("description", false);
      c.origin = origin;
      out.push_back(std::move(c));
    } catch (const std::exception& ex) {
      std::string msg = "the catalog " + origin + ": " + label + " is refused: " + ex.what();
      if (!errors) throw ComfyError("ValueError", msg);
      errors->push_back(msg);
    }
  }
  return out;
}

std::vector<CatalogEntry> load_catalog_file(const fs::path& file, std::vector<std::string>* errors) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ComfyError("FileNotFoundError", "cannot read the catalog " + file.string());
  json doc;
  try {
    doc = json::parse(in);
  } catch (const std::exception& e) {
    throw ComfyError("ValueError", "the catalog " + file.string() + " is not JSON: " + e.what());
  }
  return parse_catalog(doc, file.string(), errors);
}

void ModelCatalog::add(const std::vector<CatalogEntry>& entries) {
  for (const auto& e : entries) {
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const CatalogEntry& c) { return ascii_lower(c.name) == ascii_lower(e.name); });
    if (it != entries_.end()) *it = e;
    else entries_.push_back(e);
  }
}

std::vector<CatalogEntry> ModelCatalog::search(const std::string& text) const {
  const auto want = words(text);
  const std::string whole = ascii_lower(text);
  std::vector<std::pair<int, const CatalogEntry*>> hits;
  for (const auto& e : entries_) {
    const std::string name = ascii_lower(e.name);
    const std::string hay = name + "\n" + ascii_lower(e.filename) + "\n" + ascii_lower(e.type) + "\n" + ascii_lower(e.base) + "\n" +
                            ascii_lower(e.folder) + "\n" + ascii_lower(e.description);
    bool all = true, in_name = true;
    for (auto& w : want) {
      if (hay.find(w) == std::string::npos) all = false;
      if (name.find(w) == std::string::npos) in_name = false;
    }
    if (!all) continue;
    int rank = name == whole ? 0 : in_name ? 1 : 2;
    hits.emplace_back(rank, &e);
  }
  std::stable_sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<CatalogEntry> out;
  for (auto& [rank, e] : hits) out.push_back(*e);
  return out;
}

const CatalogEntry* ModelCatalog::find(const std::string& name) const {
  const std::string want = ascii_lower(name);
  for (const auto& e : entries_)
    if (ascii_lower(e.name) == want) return &e;
  for (const auto& e : entries_)
    if (ascii_lower(e.filename) == want || ascii_lower(fs::path(e.filename).filename().string()) == want) return &e;
  return nullptr;
}

ModelCatalog ModelCatalog::load(const FolderPaths& folders, const std::vector<fs::path>& extra_files,
                                std::vector<std::string>* warnings) {
  ModelCatalog catalog;
  auto warn = [&](const std::string& msg) {
    if (warnings) warnings->push_back(msg);
    else spdlog::warn("{}", msg);
  };
  std::error_code ec;
  try {
    // The shipped file is ours: a bad entry there is a bug, so it is not skipped quietly.
    catalog.add(load_catalog_file(find_data_path("models/catalog.json")));
  } catch (const std::exception& e) {
    warn(std::string("the shipped model catalog was not loaded: ") + e.what());
  }
  auto user_file = [&](const fs::path& file) {
    try {
      std::vector<std::string> errors;
      catalog.add(load_catalog_file(file, &errors));
      for (auto& e : errors) warn(e);
    } catch (const std::exception& e) {
      warn(e.what());
    }
  };
  auto user_path = [&](const fs::path& p) {
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> files;
      for (auto& f : fs::directory_iterator(p, ec))
        if (f.is_regular_file(ec) && ascii_lower(f.path().extension().string()) == ".json") files.push_back(f.path());
      std::sort(files.begin(), files.end());
      for (auto& f : files) user_file(f);
    } else {
      user_file(p);
    }
  };
  fs::path own = folders.user_directory() / "catalog.json";
  if (fs::exists(own, ec)) user_file(own);
  if (folders.has_folder("catalogs"))
    for (auto& p : folders.get_folder_paths("catalogs"))
      if (fs::exists(p, ec)) user_path(p);
  if (const char* env = std::getenv("COMFYCPP_CATALOG")) {
    std::string list = env;
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(':', start);
      std::string item = list.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!item.empty()) user_path(item);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  for (auto& f : extra_files) user_path(f);
  return catalog;
}

void annotate_missing_with_catalog(json& report, const ModelCatalog& catalog) {
  if (!report.contains("models") || !report["models"].is_array()) return;
  for (auto& m : report["models"]) {
    m["catalog"] = nullptr;
    const std::string status = m.value("status", "");
    if (status != "missing" && status != "download_failed") continue;
    if (!m.contains("name") || !m["name"].is_string() || !m.contains("directory") || !m["directory"].is_string()) continue;
    const std::string want = ascii_lower(fs::path(m["name"].get<std::string>()).filename().string());
    const std::string folder = FolderPaths::map_legacy(m["directory"].get<std::string>());
    for (const auto& e : catalog.entries()) {
      if (FolderPaths::map_legacy(e.folder) != folder) continue;
      if (ascii_lower(fs::path(e.filename).filename().string()) != want) continue;
      m["catalog"] = e.name;
      break;
    }
  }
}

json CatalogInstall::to_json() const {
  return json{{"status", status},
              {"download_id", opt_string(download_id)},
              {"path", opt_string(path)},
              {"message", message}};
}

std::string catalog_entry_path(const CatalogEntry& entry, const FolderPaths& folders) {
  const std::string folder = FolderPaths::map_legacy(entry.folder);
  if (!folders.has_folder(folder)) return "";
  for (auto& dir : folders.get_folder_paths(folder)) {
    std::error_code ec;
    fs::path p = dir / entry.filename;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

CatalogInstall install_catalog_entry(const CatalogEntry& entry, const FolderPaths& folders, DownloadManager& downloads,
                                     const std::function<std::string(const fs::path&)>& hasher) {
  CatalogInstall out;
  if (auto why = filename_problem(entry.filename); !why.empty())
    throw ComfyError("ValueError", "the catalog entry '" + entry.name + "' is refused: " + why);
  if (std::string existing = catalog_entry_path(entry, folders); !existing.empty()) {
    out.path = existing;
    if (entry.sha256.empty()) {
      out.status = "present";
      out.message = existing + " is already there (the catalog gives no SHA-256 to check it against)";
      return out;
    }
    std::string digest = hasher ? hasher(existing) : sha256_of_file(existing);
    if (digest == entry.sha256) {
      out.status = "present";
      out.message = existing + " is already there with the catalog's SHA-256";
      return out;
    }
    out.status = "failed";
    out.message = existing + " is already there but its SHA-256 is " + digest + ", not the catalog's " +
                  entry.sha256 + "; it was left alone (move it away to download the catalog's file)";
    return out;
  }
  DownloadRequest req;
  req.url = entry.url;
  req.directory = entry.folder;
  req.filename = entry.filename;
  req.sha256 = entry.sha256;
  req.size = entry.size;
  out.download_id = downloads.enqueue(req);
  out.status = "queued";
  if (auto st = downloads.get(out.download_id)) out.path = st->target.string();
  out.message = "downloading " + entry.name + " into " + entry.folder + " (download " + out.download_id + ")";
  return out;
}

}  // namespace comfy
