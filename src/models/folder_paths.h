// ComfyUI's folder_paths: the base, input, output, temp and user directories, the table of model
// folders (names, search directories, accepted extensions, legacy aliases), extra_model_paths.yaml,
// cached recursive listings, annotated filenames and the save-path counter (spec section 5, 9.2).
#pragma once
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"

namespace comfy {

class FolderPaths {
 public:
  using path = std::filesystem::path;

  // Sets up ComfyUI's default folder table under `base_directory`/models and the default
  // input/output/temp/user directories under `base_directory` (made absolute).
  explicit FolderPaths(const path& base_directory);

  const path& base_directory() const { return base_; }
  const path& models_directory() const { return models_dir_; }
  const path& input_directory() const { return input_dir_; }
  const path& output_directory() const { return output_dir_; }
  const path& temp_directory() const { return temp_dir_; }
  const path& user_directory() const { return user_dir_; }
  void set_input_directory(const path& p);
  void set_output_directory(const path& p);
  void set_temp_directory(const path& p);  // ComfyUI's --temp-directory X means X/temp
  void set_user_directory(const path& p);
  // "input" | "output" | "temp" -> directory; nullopt for anything else.
  std::optional<path> directory_by_type(const std::string& type) const;

  // Model folders. Names accept the legacy aliases clip -> text_encoders, unet -> diffusion_models.
  static std::string map_legacy(const std::string& folder_name);
  bool has_folder(const std::string& folder_name) const;
  std::vector<std::string> folder_names() const;  // in table order
  std::vector<path> get_folder_paths(const std::string& folder_name) const;
  std::set<std::string> extensions(const std::string& folder_name) const;
  // Adds a search directory (appended, or moved/inserted to the front when is_default). An unknown
  // folder name gets a new entry that accepts every extension.
  void add_model_folder_path(const std::string& folder_name, const path& dir, bool is_default = false);
  // ComfyUI's extra_model_paths.yaml; throws std::runtime_error with a readable message when the
  // file cannot be read or parsed.
  void load_extra_model_paths(const path& yaml_file);
  // After the yaml files: output/checkpoints, output/clip ... become search paths (spec 5.1).
  void add_output_model_folders();

  // Sorted, recursive, forward-slash relative names of the folder's files with an accepted
  // extension; cached and rescanned when any visited directory's mtime changes.
  std::vector<std::string> get_filename_list(const std::string& folder_name) const;
  std::optional<path> get_full_path(const std::string& folder_name, const std::string& filename) const;
  // Throws ComfyError("FileNotFoundError", "Model in folder '<f>' with filename '<n>' not found.").
  path get_full_path_or_raise(const std::string& folder_name, const std::string& filename) const;

  // The identity of the file `filename` of a folder, for the outputs cache: [path, size, mtime]
  // (nanoseconds), or null when there is no such file.
  nlohmann::ordered_json file_fingerprint(const std::string& folder_name, const std::string& filename) const;

  // "name.png [output]" -> (name.png, "output"); no or unknown annotation -> (name, nullopt).
  static std::pair<std::string, std::optional<std::string>> split_annotation(const std::string& name);
  // The annotated file's full path; the default directory is the input directory.
  path get_annotated_filepath(const std::string& name, const std::optional<path>& default_dir = {}) const;
  bool exists_annotated_filepath(const std::string& name) const;

  // Top-level files of the input directory, sorted (LoadImage and friends filter this).
  std::vector<std::string> list_input_files() const;

  // ComfyUI's get_save_image_path: resolves %width%/%height%/%year%... in the prefix, rejects a
  // prefix that escapes `output_dir` (ComfyError "Exception"), creates the folder, and finds the
  // next free counter for "<filename>_<NNNNN>_".
  struct SavePath {
    path full_output_folder;
    std::string filename;
    int counter = 1;
    std::string subfolder;  // forward slashes, "" at the top
    std::string filename_prefix;
  };
  SavePath get_save_image_path(const std::string& filename_prefix, const path& output_dir,
                               int image_width = 0, int image_height = 0) const;

 private:
  struct Folder {
    std::vector<path> paths;
    std::set<std::string> extensions;  // lower-case with dot; empty = every file
  };
  struct Listing {
    std::vector<std::string> files;
    std::map<path, std::filesystem::file_time_type> dir_mtimes;
  };
  path base_, models_dir_, input_dir_, output_dir_, temp_dir_, user_dir_;
  std::vector<std::pair<std::string, Folder>> folders_;  // table order
  mutable std::mutex cache_mutex_;
  mutable std::map<std::string, Listing> cache_;
  Folder* find(const std::string& name);
  const Folder* find(const std::string& name) const;
};

}  // namespace comfy
