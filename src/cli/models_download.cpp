// `comfycpp models download|missing` (models_download.h).
#include "cli/models_download.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/models.h"
#include "core/text.h"
#include "cli/app.h"
#include "cli/workflow_file.h"
#include "core/error.h"
#include "core/json.h"
#include "io/blake3.h"
#include "models/missing_models.h"
#include "models/model_catalog.h"
#include "models/model_download.h"
#include "nodes/all.h"
#include "store/hash_cache.h"

namespace comfy {

namespace {

namespace fs = std::filesystem;

struct DownloadArgs {
  DirectoryArgs dirs;
  std::string url, directory, sha256, filename, workflow;
  uint64_t size = 0;
  bool json_output = false;
  bool download = false;
  bool allow_pickle = false;
};

}  // namespace

// One line, redrawn: [#####-----]  42%  1.2 GiB / 2.9 GiB  35.0 MiB/s
void draw_download_progress(const DownloadState& s) {
  const int width = 30;
  double frac = s.bytes_total ? static_cast<double>(s.bytes_done) / static_cast<double>(s.bytes_total) : 0;
  int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar += std::string(static_cast<size_t>(width - filled), '-');
  std::string name = s.target.empty() ? url_file_name(s.request.url) : s.target.filename().string();
  std::fprintf(stderr, "\r%s [%s] %3.0f%%  %s / %s  %s/s   ", name.c_str(), bar.c_str(), frac * 100,
               human_size(static_cast<double>(s.bytes_done), 1).c_str(),
               s.bytes_total ? human_size(static_cast<double>(s.bytes_total), 1).c_str() : "?", human_size(s.speed, 1).c_str());
  std::fflush(stderr);
}

namespace {

void draw_progress(const DownloadState& s) { draw_download_progress(s); }

DownloadOptions cli_options(const DownloadArgs& a, const FolderPaths& folders) {
  DownloadOptions o = DownloadOptions::from_env(folders.user_directory() / "__comfycpp" / "download_tokens.json");
  if (a.allow_pickle) o.allow_pickle = true;
  o.max_concurrent = 1;
  return o;
}

int download_command(const DownloadArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  DownloadManager dm(*folders, cli_options(a, *folders));
  const bool tty = !a.json_output && ::isatty(2);
  if (tty) dm.set_listener([](const DownloadState& s) {
    if (s.status == DownloadStatus::running) draw_progress(s);
  });
  DownloadRequest r{a.url, a.directory, a.filename, a.sha256, {}};
  if (a.size) r.size = a.size;
  DownloadState st = dm.wait(dm.enqueue(r));
  if (tty) std::fprintf(stderr, "\n");
  if (a.json_output) {
    std::cout << st.to_json().dump(2) << "\n";
  } else if (st.status == DownloadStatus::completed) {
    std::cout << "downloaded " << st.target.string() << " (" << human_size(static_cast<double>(st.bytes_done), 1)
              << ", sha256 " << st.sha256 << ")\n";
  } else {
    std::cerr << "download failed: " << st.error << "\n";
  }
  return st.status == DownloadStatus::completed ? 0 : 1;
}

int missing_command(const DownloadArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  Services services;
  services.folders = folders.get();
  services.list_folder = [f = folders.get()](const std::string& name) { return f->get_filename_list(name); };
  services.model_fingerprint = [f = folders.get()](const std::string& folder, const std::string& name) {
    return f->file_fingerprint(folder, name);
  };
  Registry registry;
  register_all_nodes(registry);
  json doc;
  std::string lower_path = a.workflow;
  for (auto& c : lower_path) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool image = lower_path.size() > 4 && (lower_path.substr(lower_path.size() - 4) == ".png" ||
                                               lower_path.substr(lower_path.size() - 5) == ".webp");
  if (image) {
    LoadedWorkflow lw = load_workflow_file(a.workflow, registry, services);
    doc = json{{"prompt", lw.prompt}, {"extra_data", lw.extra_data}};
  } else {
    std::ifstream in(a.workflow, std::ios::binary);
    if (!in) throw ComfyError("FileNotFoundError", "cannot read the workflow " + a.workflow);
    try {
      doc = json::parse(in);
    } catch (const std::exception& e) {
      throw ComfyError("ValueError", "the workflow " + a.workflow + " is not JSON: " + e.what());
    }
  }
  std::vector<std::string> warnings;
  auto refs = collect_model_references(doc, &registry, &services, &warnings);
  std::unique_ptr<DownloadManager> dm;
  if (a.download) dm = std::make_unique<DownloadManager>(*folders, cli_options(a, *folders));
  const bool tty = !a.json_output && ::isatty(2);
  if (dm && tty) dm->set_listener([](const DownloadState& s) {
    if (s.status == DownloadStatus::running) draw_progress(s);
    if (s.finished()) std::fprintf(stderr, "\n");
  });
  ResolveOptions ro;
  ro.download = a.download;
  ro.downloads = dm.get();
  std::shared_ptr<HashCache> cache;
  try {
    cache = std::make_shared<HashCache>(folders->user_directory() / "__comfycpp" / "model_hashes.sqlite");
    ro.hasher = [cache](const fs::path& p, const std::string& algo) -> std::string {
      if (algo == "sha256") return cache->digest(p, "sha256", [](const fs::path& f) { return sha256_of_file(f); });
      if (algo == "blake3") return cache->digest(p, "blake3", [](const fs::path& f) { return io::blake3_file_hex(f); });
      return "";
    };
  } catch (const std::exception&) {
  }
  auto rs = resolve_models(refs, *folders, ro);
  json report = missing_models_report(rs, warnings);
  std::vector<std::string> catalog_warnings;
  annotate_missing_with_catalog(report, ModelCatalog::load(*folders, {}, &catalog_warnings));
  if (a.json_output) {
    std::cout << report.dump(2) << "\n";
  } else {
    for (auto& w : warnings) std::cout << "warning: " << w << "\n";
    if (rs.empty()) std::cout << "the workflow references no model files\n";
    for (size_t i = 0; i < rs.size(); ++i) {
      const auto& r = rs[i];
      const json& in_catalog = report["models"][i]["catalog"];
      const char* mark = r.status == "found" || r.status == "downloaded" ? "ok     "
                         : r.status == "found_elsewhere" || r.status == "found_by_hash" ? "moved  "
                         : r.status == "download_queued" ? "queued "
                                                         : "MISSING";
      std::cout << mark << " " << r.ref.folder << "/" << r.ref.name << ": " << r.message;
      if (in_catalog.is_string())
        std::cout << "; the catalog has it: comfycpp models catalog install " << in_catalog.get<std::string>();
      std::cout << "\n";
    }
    int missing = report["missing"].get<int>();
    std::cout << (missing ? std::to_string(missing) + " model(s) missing" : std::string("all models found")) << "\n";
  }
  return report["missing"].get<int>() ? 1 : 0;
}

}  // namespace

void add_download_commands(CLI::App& models, int* exit_code) {
  auto wire = [exit_code](CLI::App* sub, std::shared_ptr<DownloadArgs> args, int (*run)(const DownloadArgs&),
                          const char* name) {
    sub->add_flag("--json", args->json_output, "Print JSON on stdout.");
    sub->add_flag("--allow-pickle", args->allow_pickle, "Also download pickle formats (.ckpt, .pt, .pth, .bin).");
    args->dirs.add_to(*sub);
    sub->callback([args, exit_code, run, name] {
      *exit_code = run_models_subcommand(name, args->json_output, args->dirs, [&] { return run(*args); });
    });
  };
  auto d = std::make_shared<DownloadArgs>();
  CLI::App* download = models.add_subcommand("download", "Download a model file into a model folder (resumable, verified).");
  download->add_option("url", d->url, "an http(s) URL")->required();
  download->add_option("--directory", d->directory, "the model folder: checkpoints, loras, vae, ...")->required();
  download->add_option("--sha256", d->sha256, "the expected SHA-256; a file that differs is refused");
  download->add_option("--filename", d->filename,
                       "the name to save as, subfolders allowed (sub/x.safetensors); default: the URL's last "
                       "segment, or the server's Content-Disposition name");
  download->add_option("--size", d->size, "the expected size in bytes");
  wire(download, d, download_command, "download");

  auto m = std::make_shared<DownloadArgs>();
  CLI::App* missing = models.add_subcommand("missing", "List the models a workflow needs and where they are.");
  missing->add_option("workflow", m->workflow, "an API or UI workflow (.json), or a PNG/WebP carrying one")->required();
  missing->add_flag("--download", m->download, "Download missing models that have a url.");
  wire(missing, m, missing_command, "missing");
}

}  // namespace comfy
