// `comfycpp models catalog [search TEXT | install NAME]` (models_catalog.h).
#include "cli/models_catalog.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/models.h"
#include "cli/app.h"
#include "cli/models_download.h"
#include "core/error.h"
#include "core/json.h"
#include "models/missing_models.h"
#include "models/model_catalog.h"
#include "models/model_download.h"
#include "store/hash_cache.h"

namespace comfy {

namespace {

namespace fs = std::filesystem;

struct CatalogArgs {
  DirectoryArgs dirs;
  std::vector<std::string> catalogs;
  std::string text;  // search words or the name to install
  bool json_output = false;
  bool allow_pickle = false;
};

ModelCatalog load(const CatalogArgs& a, const FolderPaths& folders, std::vector<std::string>& warnings) {
  std::vector<fs::path> extra(a.catalogs.begin(), a.catalogs.end());
  // A file named on the command line must be readable: that is an error, not a warning.
  for (auto& f : extra)
    if (!fs::exists(f)) throw ComfyError("FileNotFoundError", "the catalog " + f.string() + " does not exist");
  return ModelCatalog::load(folders, extra, &warnings);
}

std::string size_text(const CatalogEntry& e) {
  if (!e.size) return "size unknown";
  double v = static_cast<double>(*e.size);
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

int list_entries(const CatalogArgs& a, bool searching) {
  auto folders = make_folder_paths(a.dirs);
  std::vector<std::string> warnings;
  ModelCatalog catalog = load(a, *folders, warnings);
  auto hits = searching ? catalog.search(a.text) : catalog.entries();
  if (a.json_output) {
    json list = json::array();
    for (auto& e : hits) {
      json j = e.to_json();
      std::string path = catalog_entry_path(e, *folders);
      j["installed"] = path.empty() ? json(nullptr) : json(path);
      list.push_back(j);
    }
    std::cout << json{{"models", list}, {"warnings", warnings}}.dump(2) << "\n";
    return searching && hits.empty() ? 1 : 0;
  }
  for (auto& w : warnings) std::cerr << "warning: " << w << "\n";
  if (hits.empty()) {
    std::cout << (searching ? "no catalog entry matches '" + a.text + "'" : std::string("the catalog is empty")) << "\n";
    return searching ? 1 : 0;
  }
  for (auto& e : hits) {
    bool installed = !catalog_entry_path(e, *folders).empty();
    std::cout << (installed ? "* " : "  ") << e.name << "  [" << e.type << ", " << e.base << "]  " << e.folder << "/"
              << e.filename << "  (" << size_text(e) << (e.sha256.empty() ? ", no SHA-256" : "") << ")\n";
    if (!e.description.empty()) std::cout << "      " << e.description << "\n";
  }
  std::cout << hits.size() << " model(s); * installed. Install one with: comfycpp models catalog install NAME\n";
  return 0;
}

int install_entry(const CatalogArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  std::vector<std::string> warnings;
  ModelCatalog catalog = load(a, *folders, warnings);
  for (auto& w : warnings) std::cerr << "warning: " << w << "\n";
  const CatalogEntry* entry = catalog.find(a.text);
  if (!entry) {
    std::string hint;
    auto near = catalog.search(a.text);
    for (size_t i = 0; i < near.size() && i < 5; ++i) hint += (i ? ", " : "; did you mean ") + near[i].name;
    throw ComfyError("ValueError", "the model catalog has no entry named '" + a.text + "'" + hint);
  }
  DownloadOptions o = DownloadOptions::from_env(folders->user_directory() / "__comfycpp" / "download_tokens.json");
  if (a.allow_pickle) o.allow_pickle = true;
  o.max_concurrent = 1;
  DownloadManager dm(*folders, o);
  const bool tty = !a.json_output && ::isatty(2);
  if (tty) dm.set_listener([](const DownloadState& s) {
    if (s.status == DownloadStatus::running) draw_download_progress(s);
  });
  std::shared_ptr<HashCache> cache;
  try {
    cache = std::make_shared<HashCache>(folders->user_directory() / "__comfycpp" / "model_hashes.sqlite");
  } catch (const std::exception&) {
  }
  auto hasher = [cache](const fs::path& p) {
    if (cache) return cache->digest(p, "sha256", [](const fs::path& f) { return sha256_of_file(f); });
    return sha256_of_file(p);
  };
  CatalogInstall result;
  try {
    result = install_catalog_entry(*entry, *folders, dm, hasher);
  } catch (const ComfyError& e) {
    std::string msg = e.what();
    if (!a.allow_pickle && msg.find("pickle format") != std::string::npos) msg += "; add --allow-pickle to install it";
    throw ComfyError(e.type(), msg);
  }
  json report = result.to_json();
  report["entry"] = entry->to_json();
  if (!result.download_id.empty()) {
    DownloadState st = dm.wait(result.download_id);
    if (tty) std::fprintf(stderr, "\n");
    report["download"] = st.to_json();
    report["path"] = st.target.string();
    if (st.status == DownloadStatus::completed) {
      report["status"] = "completed";
      report["message"] = "installed " + entry->name + " as " + st.target.string() +
                           (entry->sha256.empty() ? " (the catalog gives no SHA-256; not verified)"
                                                  : " (SHA-256 verified)");
    } else {
      report["status"] = "failed";
      report["message"] = "the download of " + entry->name + " failed: " + st.error;
    }
  }
  if (a.json_output) std::cout << report.dump(2) << "\n";
  else if (report["status"] == "failed") std::cerr << report["message"].get<std::string>() << "\n";
  else std::cout << report["message"].get<std::string>() << "\n";
  return report["status"] == "failed" ? 1 : 0;
}

}  // namespace

void add_catalog_commands(CLI::App& models, int* exit_code) {
  auto wire = [exit_code](CLI::App* sub, std::shared_ptr<CatalogArgs> args, std::function<int(const CatalogArgs&)> run,
                          const std::string& name, std::function<bool()> skip = {}) {
    sub->add_flag("--json", args->json_output, "Print JSON on stdout.");
    sub->add_option("--catalog", args->catalogs, "another catalog file (JSON); its entries override by name");
    args->dirs.add_to(*sub);
    sub->callback([args, exit_code, run, name, skip] {
      if (skip && skip()) return;
      *exit_code = run_models_subcommand("catalog " + name, args->json_output, args->dirs, [&] { return run(*args); });
    });
  };
  auto all = std::make_shared<CatalogArgs>();
  CLI::App* catalog = models.add_subcommand("catalog", "Known models: list, search, install by name.");

  // Flags given before the subcommand (`models catalog --base-directory D search x`) count too.
  auto merged = [all](const CatalogArgs& a) {
    CatalogArgs m = a;
    if (m.dirs.base_directory.empty() && m.dirs.extra_model_paths_config.empty() && m.dirs.user_directory.empty())
      m.dirs = all->dirs;
    m.catalogs.insert(m.catalogs.begin(), all->catalogs.begin(), all->catalogs.end());
    m.json_output = m.json_output || all->json_output;
    return m;
  };
  auto s = std::make_shared<CatalogArgs>();
  CLI::App* search = catalog->add_subcommand("search", "Catalog entries matching every word of TEXT.");
  search->add_option("text", s->text, "words to look for in names, files, types, bases, descriptions")->required();
  wire(search, s, [merged](const CatalogArgs& a) { return list_entries(merged(a), true); }, "search");

  auto i = std::make_shared<CatalogArgs>();
  CLI::App* install = catalog->add_subcommand("install", "Download a catalog entry into its model folder, verified.");
  install->add_option("name", i->text, "the entry's name (or its filename)")->required();
  install->add_flag("--allow-pickle", i->allow_pickle, "Also install pickle formats (.pth, .ckpt).");
  wire(install, i, [merged](const CatalogArgs& a) { return install_entry(merged(a)); }, "install");
  // `models catalog` alone lists; with a subcommand only the subcommand runs.
  catalog->require_subcommand(0, 1);
  wire(catalog, all, [](const CatalogArgs& a) { return list_entries(a, false); }, "list",
       [catalog] { return !catalog->get_subcommands().empty(); });
}

}  // namespace comfy
