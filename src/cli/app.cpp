#include "cli/app.h"

#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "nodes/all.h"

namespace comfy {

namespace fs = std::filesystem;

void DirectoryArgs::add_to(CLI::App& app) {
  app.add_option("--base-directory", base_directory,
                 "Base directory for models, custom_nodes, input, output, temp and user (default: the current directory).");
  app.add_option("--input-directory", input_directory, "Set the ComfyUI input directory.");
  app.add_option("--output-directory", output_directory, "Set the ComfyUI output directory.");
  app.add_option("--temp-directory", temp_directory, "Set the ComfyUI temp directory (its temp/ subfolder is used).");
  app.add_option("--user-directory", user_directory, "Set the ComfyUI user directory.");
  app.add_option("--extra-model-paths-config", extra_model_paths_config,
                 "Load one or more extra_model_paths.yaml files.")
      ->take_all();
  verbose_opt = app.add_option("--verbose", verbose, "Log level: DEBUG (the flag alone), INFO, WARNING, ERROR, CRITICAL.")
                    ->expected(0, 1)
                    ->check(CLI::IsMember({"", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}));
}

spdlog::level::level_enum DirectoryArgs::log_level(spdlog::level::level_enum fallback) const {
  if (!verbose_opt || verbose_opt->count() == 0) return fallback;
  if (verbose.empty() || verbose == "DEBUG") return spdlog::level::debug;
  if (verbose == "INFO") return spdlog::level::info;
  if (verbose == "WARNING") return spdlog::level::warn;
  if (verbose == "ERROR") return spdlog::level::err;
  return spdlog::level::critical;
}

std::unique_ptr<FolderPaths> make_folder_paths(const DirectoryArgs& args) {
  fs::path base = args.base_directory.empty() ? fs::current_path() : fs::path(args.base_directory);
  std::error_code mk;
  fs::create_directories(base, mk);
  if (!fs::is_directory(base)) throw std::runtime_error("cannot use base directory " + base.string() + ": " + mk.message());
  auto folders = std::make_unique<FolderPaths>(fs::absolute(base));
  fs::path default_yaml = folders->base_directory() / "extra_model_paths.yaml";
  if (fs::exists(default_yaml)) folders->load_extra_model_paths(default_yaml);
  for (auto& p : args.extra_model_paths_config) folders->load_extra_model_paths(p);
  if (!args.output_directory.empty()) folders->set_output_directory(fs::absolute(args.output_directory));
  folders->add_output_model_folders();
  if (!args.input_directory.empty()) folders->set_input_directory(fs::absolute(args.input_directory));
  if (!args.temp_directory.empty()) folders->set_temp_directory(fs::absolute(args.temp_directory));
  if (!args.user_directory.empty()) {
    if (!fs::is_directory(args.user_directory))
      throw std::runtime_error("user directory does not exist: " + args.user_directory);
    folders->set_user_directory(fs::absolute(args.user_directory));
  }
  return folders;
}

AppState::AppState(const DirectoryArgs& args) {
  folders = make_folder_paths(args);
  // ComfyUI empties temp at start-up; the other folders are created when missing.
  std::error_code ec;
  fs::remove_all(folders->temp_directory(), ec);
  for (auto& dir : {folders->input_directory(), folders->output_directory(), folders->temp_directory(),
                    folders->user_directory()}) {
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create directory " + dir.string() + ": " + ec.message());
  }
  services.folders = folders.get();
  services.list_folder = [f = folders.get()](const std::string& name) { return f->get_filename_list(name); };
  services.model_fingerprint = [f = folders.get()](const std::string& folder, const std::string& name) {
    return f->file_fingerprint(folder, name);
  };
  register_all_nodes(registry);
}

}  // namespace comfy
