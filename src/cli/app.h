// What every comfycpp command sets up the same way: ComfyUI's directory flags, the folder
// registry they describe, and the node registry.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/common.h>

#include "graph/registry.h"
#include "graph/services.h"
#include "models/folder_paths.h"

namespace comfy {

struct DirectoryArgs {
  std::string base_directory;
  std::string input_directory, output_directory, temp_directory, user_directory;
  std::vector<std::string> extra_model_paths_config;
  // --verbose [LEVEL]: ComfyUI's levels (DEBUG, INFO, WARNING, ERROR, CRITICAL); the flag alone
  // is DEBUG, and without it each command keeps its own default.
  std::string verbose;
  CLI::Option* verbose_opt = nullptr;
  spdlog::level::level_enum log_level(spdlog::level::level_enum fallback) const;

  // Adds ComfyUI's flags (--base-directory, --input-directory, ...) to a (sub)command.
  void add_to(CLI::App& app);
};

// The folder registry the flags describe, as AppState builds it (base directory,
// extra_model_paths.yaml files, output model folders, directory overrides), without creating
// input/output/temp/user or emptying temp: for commands that only read model folders.
std::unique_ptr<FolderPaths> make_folder_paths(const DirectoryArgs& args);

// The long-lived objects a command works with, built from its flags.
struct AppState {
  std::unique_ptr<FolderPaths> folders;
  Registry registry;
  Services services;

  // Builds folders as ComfyUI's start-up does: base directory, extra_model_paths.yaml beside it
  // and from each --extra-model-paths-config, the output model folders, then the directory
  // overrides; creates input/output/temp/user and empties temp. Throws std::runtime_error.
  explicit AppState(const DirectoryArgs& args);
};

int run_command(const DirectoryArgs& dirs, const std::string& workflow, const std::vector<std::string>& sets,
                bool json_output);

}  // namespace comfy
