#include "cli/convert.h"

#include <filesystem>
#include <iostream>

#include "cli/workflow_file.h"
#include "graph/ui_workflow.h"
#include "nodes/all.h"

namespace comfy {

int convert_command(const DirectoryArgs& dirs, const std::string& workflow, const std::string& to) {
  if (to != "api") {
    std::cerr << "error: --to must be \"api\" (the only format convert writes)\n";
    return 2;
  }
  // Read-only: unlike `run`, nothing is created or emptied; the folders only feed combo defaults
  // (LoadImage's file list) for widgets a workflow left without a value.
  namespace fs = std::filesystem;
  fs::path base = dirs.base_directory.empty() ? fs::current_path() : fs::path(dirs.base_directory);
  FolderPaths folders(fs::absolute(base));
  if (!dirs.input_directory.empty()) folders.set_input_directory(fs::absolute(dirs.input_directory));
  Registry registry;
  register_all_nodes(registry);
  Services services;
  services.folders = &folders;
  services.list_folder = [&folders](const std::string& name) { return folders.get_filename_list(name); };
  try {
    LoadedWorkflow loaded = load_workflow_file(workflow, registry, services);
    std::cout << loaded.prompt.dump(2) << "\n";
    return 0;
  } catch (const WorkflowError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace comfy
