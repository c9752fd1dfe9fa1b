// ComfyUI 0.8.0 folder_paths.py and utils/extra_config.py (spec sections 5 and 9.2).
//
// Path strings follow Python's posixpath semantics (normpath, join, abspath, dirname, basename,
// splitext, expanduser, expandvars) so that configured directories, listed names and save paths
// are the same strings ComfyUI would produce.
#include "models/folder_paths.h"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "core/text.h"
#include "core/error.h"

namespace comfy {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// posixpath equivalents

std::vector<std::string> split_components(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == '/') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// os.path.normpath (POSIX): collapses separators and "." components, resolves ".." lexically,
// keeps leading ".." of relative paths, keeps exactly two leading slashes, "" -> ".".
std::string py_normpath(const std::string& path) {
  if (path.empty()) return ".";
  int initial_slashes = 0;
  if (path[0] == '/') {
    initial_slashes = 1;
    if (path.size() > 1 && path[1] == '/' && !(path.size() > 2 && path[2] == '/')) initial_slashes = 2;
  }
  std::vector<std::string> comps;
  for (const std::string& c : split_components(path)) {
    if (c.empty() || c == ".") continue;
    if (c != ".." || (initial_slashes == 0 && comps.empty()) || (!comps.empty() && comps.back() == "..")) {
      comps.push_back(c);
    } else if (!comps.empty()) {
      comps.pop_back();
    }
  }
  std::string out(static_cast<size_t>(initial_slashes), '/');
  for (size_t i = 0; i < comps.size(); ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out.empty() ? "." : out;
}

// os.path.join(a, b) for two components.
std::string py_join(const std::string& a, const std::string& b) {
  if (!b.empty() && b[0] == '/') return b;
  if (a.empty() || a.back() == '/') return a + b;
  return a + "/" + b;
}

bool py_isabs(const std::string& s) { return !s.empty() && s[0] == '/'; }

std::string cwd_string() {
  std::error_code ec;
  fs::path cwd = fs::current_path(ec);
  return ec ? std::string("/") : cwd.string();
}

// os.path.abspath
std::string py_abspath(const std::string& s) {
  return py_normpath(py_isabs(s) ? s : py_join(cwd_string(), s));
}

// os.path.dirname
std::string py_dirname(const std::string& s) {
  size_t i = s.rfind('/');
  i = (i == std::string::npos) ? 0 : i + 1;
  std::string head = s.substr(0, i);
  if (!head.empty() && head.find_first_not_of('/') != std::string::npos) {
    while (!head.empty() && head.back() == '/') head.pop_back();
  }
  return head;
}

// os.path.basename
std::string py_basename(const std::string& s) {
  size_t i = s.rfind('/');
  return i == std::string::npos ? s : s.substr(i + 1);
}

// os.path.splitext(s)[1]: the extension of the last component; leading dots of the name do not
// start an extension (".hidden" has none).
std::string py_ext(const std::string& s) {
  size_t sep = s.rfind('/');
  size_t dot = s.rfind('.');
  size_t start = (sep == std::string::npos) ? 0 : sep + 1;
  if (dot == std::string::npos || (sep != std::string::npos && dot < sep)) return "";
  for (size_t i = start; i < dot; ++i) {
    if (s[i] != '.') return s.substr(dot);
  }
  return "";
}

// os.path.expanduser (POSIX)
std::string py_expanduser(const std::string& path) {
  if (path.empty() || path[0] != '~') return path;
  size_t i = path.find('/', 1);
  if (i == std::string::npos) i = path.size();
  std::string userhome;
  if (i == 1) {
    if (const char* home = std::getenv("HOME")) {
      userhome = home;
    } else {
      const struct passwd* pw = getpwuid(getuid());
      if (!pw || !pw->pw_dir) return path;
      userhome = pw->pw_dir;
    }
  } else {
    std::string name = path.substr(1, i - 1);
    const struct passwd* pw = getpwnam(name.c_str());
    if (!pw || !pw->pw_dir) return path;
    userhome = pw->pw_dir;
  }
  while (!userhome.empty() && userhome.back() == '/') userhome.pop_back();
  std::string out = userhome + path.substr(i);
  return out.empty() ? "/" : out;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// os.path.expandvars (POSIX): $NAME and ${NAME}; unknown variables are left as they are, and a
// substituted value is not expanded again.
std::string py_expandvars(const std::string& path) {
  if (path.find('$') == std::string::npos) return path;
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] != '$') {
      out += path[i++];
      continue;
    }
    size_t end = std::string::npos;
    std::string name;
    if (i + 1 < path.size() && path[i + 1] == '{') {
      size_t close = path.find('}', i + 2);
      if (close != std::string::npos) {
        name = path.substr(i + 2, close - i - 2);
        end = close + 1;
      }
    } else {
      size_t j = i + 1;
      while (j < path.size() && is_word_char(path[j])) ++j;
      if (j > i + 1) {
        name = path.substr(i + 1, j - i - 1);
        end = j;
      }
    }
    if (end == std::string::npos) {
      out += path[i++];
      continue;
    }
    const char* value = std::getenv(name.c_str());
    if (value) {
      out += value;
    } else {
      out += path.substr(i, end - i);
    }
    i = end;
  }
  return out;
}

// Byte offset just after the first `n` code points of a UTF-8 string (Python slices by code
// point); an invalid byte counts as one code point, as surrogateescape'd file names do.
size_t utf8_prefix_bytes(const std::string& s, size_t n) {
  size_t pos = 0;
  while (n > 0 && pos < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[pos]);
    size_t len = 1;
    if (c >= 0xF0 && c < 0xF8) len = 4;
    else if (c >= 0xE0) len = (c < 0xF0) ? 3 : 1;
    else if (c >= 0xC0) len = 2;
    if (pos + len > s.size()) len = 1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[pos + k]) & 0xC0) != 0x80) {
        len = 1;
        break;
      }
    }
    pos += len;
    --n;
  }
  return pos;
}

size_t utf8_length(const std::string& s) {
  size_t count = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    pos = utf8_prefix_bytes(s.substr(pos), 1) + pos;
    ++count;
  }
  return count;
}

// Python's int(str) for the digits part of a save-file name: surrounding whitespace, optional sign,
// ASCII digits. Saturates instead of growing without bound.
std::optional<long long> py_int(const std::string& text) {
  const char* ws = " \t\n\v\f\r";
  size_t b = text.find_first_not_of(ws);
  if (b == std::string::npos) return std::nullopt;
  size_t e = text.find_last_not_of(ws);
  std::string s = text.substr(b, e - b + 1);
  bool negative = false;
  size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  if (i >= s.size()) return std::nullopt;
  long long value = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    int d = s[i] - '0';
    if (value > (LLONG_MAX - d) / 10) {
      value = LLONG_MAX;
    } else {
      value = value * 10 + d;
    }
  }
  return negative ? -value : value;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
}

std::string two_digits(int v) {
  std::string s = std::to_string(v);
  return s.size() < 2 ? "0" + s : s;
}

// ---------------------------------------------------------------------------------------------
// Recursive listing (os.walk(followlinks=True) with ".git" directories pruned)

struct ScanState {
  std::vector<std::string>* files;
  std::map<fs::path, fs::file_time_type>* mtimes;
  std::vector<std::pair<dev_t, ino_t>> ancestors;  // guards against symlink cycles
};

void walk(const fs::path& dir, const std::string& rel, ScanState& st) {
  struct stat sb;
  bool have_id = ::stat(dir.c_str(), &sb) == 0;
  if (have_id) {
    for (const auto& a : st.ancestors) {
      if (a.first == sb.st_dev && a.second == sb.st_ino) return;
    }
    st.ancestors.emplace_back(sb.st_dev, sb.st_ino);
  }
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  std::vector<std::pair<fs::path, std::string>> subdirs;
  if (!ec) {
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const fs::directory_entry& entry = *it;
      std::string name = entry.path().filename().string();
      std::error_code dec;
      bool is_dir = entry.is_directory(dec);  // follows symlinks; errors count as "not a dir"
      if (dec) is_dir = false;
      if (is_dir) {
        if (name == ".git") continue;
        fs::path sub = dir / name;
        std::error_code mec;
        auto t = fs::last_write_time(sub, mec);
        if (!mec) {
          (*st.mtimes)[sub] = t;
        } else {
          spdlog::warn("Warning: Unable to access {}. Skipping this path.", sub.string());
        }
        subdirs.emplace_back(sub, rel + name + "/");
      } else {
        st.files->push_back(rel + name);
      }
    }
  }
  for (const auto& [sub, sub_rel] : subdirs) walk(sub, sub_rel, st);
  if (have_id) st.ancestors.pop_back();
}

bool accepts(const std::set<std::string>& extensions, const std::string& rel) {
  if (extensions.empty()) return true;
  return extensions.count(ascii_lower(py_ext(rel))) > 0;
}

const std::set<std::string>& pt_extensions() {
  static const std::set<std::string> pt = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"};
  return pt;
}

// The abspath'd form of a directory given by the user (main.py applies os.path.abspath).
fs::path abs_dir(const fs::path& p) { return fs::path(py_abspath(p.string())); }

// ---------------------------------------------------------------------------------------------
// extra_model_paths.yaml

std::string scalar_text(const YAML::Node& n, const std::string& what, const std::string& file) {
  if (!n.IsScalar()) {
    throw std::runtime_error("extra model paths file '" + file + "': " + what + " must be a string");
  }
  return n.Scalar();
}

// Python truthiness of the value of `is_default`.
bool truthy(const YAML::Node& n) {
  if (!n || n.IsNull()) return false;
  if (n.IsSequence() || n.IsMap()) return n.size() > 0;
  bool b = false;
  if (YAML::convert<bool>::decode(n, b)) return b;
  const std::string& s = n.Scalar();
  if (n.Tag() != "!") {  // plain scalars may be numbers
    if (auto v = py_int(s)) return *v != 0;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end && *end == '\0' && !s.empty()) return d != 0.0;
  }
  return !s.empty();
}

}  // namespace

// -----------------------------------------------------------------------------------------------

FolderPaths::FolderPaths(const path& base_directory) {
  const std::string base = py_abspath(base_directory.string());
  base_ = base;
  const std::string models = py_join(base, "models");
  models_dir_ = models;
  auto m = [&](const char* sub) { return path(py_join(models, sub)); };
  const std::set<std::string>& pt = pt_extensions();

  folders_.push_back({"checkpoints", {{m("checkpoints")}, pt}});
  folders_.push_back({"configs", {{m("configs")}, {".yaml"}}});
  folders_.push_back({"loras", {{m("loras")}, pt}});
  folders_.push_back({"vae", {{m("vae")}, pt}});
  folders_.push_back({"text_encoders", {{m("text_encoders"), m("clip")}, pt}});
  folders_.push_back({"diffusion_models", {{m("unet"), m("diffusion_models")}, pt}});
  folders_.push_back({"clip_vision", {{m("clip_vision")}, pt}});
  folders_.push_back({"style_models", {{m("style_models")}, pt}});
  folders_.push_back({"embeddings", {{m("embeddings")}, pt}});
  folders_.push_back({"diffusers", {{m("diffusers")}, {"folder"}}});
  folders_.push_back({"vae_approx", {{m("vae_approx")}, pt}});
  folders_.push_back({"controlnet", {{m("controlnet"), m("t2i_adapter")}, pt}});
  folders_.push_back({"gligen", {{m("gligen")}, pt}});
  folders_.push_back({"upscale_models", {{m("upscale_models")}, pt}});
  folders_.push_back({"latent_upscale_models", {{m("latent_upscale_models")}, pt}});
  folders_.push_back({"custom_nodes", {{path(py_join(base, "custom_nodes"))}, {}}});
  folders_.push_back({"hypernetworks", {{m("hypernetworks")}, pt}});
  folders_.push_back({"photomaker", {{m("photomaker")}, pt}});
  folders_.push_back({"classifiers", {{m("classifiers")}, {""}}});
  folders_.push_back({"model_patches", {{m("model_patches")}, pt}});
  folders_.push_back({"audio_encoders", {{m("audio_encoders")}, pt}});

  output_dir_ = py_join(base, "output");
  temp_dir_ = py_join(base, "temp");
  input_dir_ = py_join(base, "input");
  user_dir_ = py_join(base, "user");

  // folder_paths.py creates the input directory at import time.
  std::error_code ec;
  if (!fs::exists(input_dir_, ec)) {
    fs::create_directories(input_dir_, ec);
    if (ec) spdlog::error("Failed to create input directory");
  }
}

void FolderPaths::set_input_directory(const path& p) { input_dir_ = abs_dir(p); }
void FolderPaths::set_output_directory(const path& p) { output_dir_ = abs_dir(p); }
void FolderPaths::set_temp_directory(const path& p) { temp_dir_ = path(py_join(py_abspath(p.string()), "temp")); }
void FolderPaths::set_user_directory(const path& p) { user_dir_ = abs_dir(p); }

std::optional<FolderPaths::path> FolderPaths::directory_by_type(const std::string& type) const {
  if (type == "output") return output_dir_;
  if (type == "temp") return temp_dir_;
  if (type == "input") return input_dir_;
  return std::nullopt;
}

std::string FolderPaths::map_legacy(const std::string& folder_name) {
  if (folder_name == "unet") return "diffusion_models";
  if (folder_name == "clip") return "text_encoders";
  return folder_name;
}

FolderPaths::Folder* FolderPaths::find(const std::string& name) {
  for (auto& [n, f] : folders_) {
    if (n == name) return &f;
  }
  return nullptr;
}

const FolderPaths::Folder* FolderPaths::find(const std::string& name) const {
  for (const auto& [n, f] : folders_) {
    if (n == name) return &f;
  }
  return nullptr;
}

bool FolderPaths::has_folder(const std::string& folder_name) const { return find(map_legacy(folder_name)) != nullptr; }

std::vector<std::string> FolderPaths::folder_names() const {
  std::vector<std::string> out;
  out.reserve(folders_.size());
  for (const auto& entry : folders_) out.push_back(entry.first);
  return out;
}

std::vector<FolderPaths::path> FolderPaths::get_folder_paths(const std::string& folder_name) const {
  const Folder* f = find(map_legacy(folder_name));
  return f ? f->paths : std::vector<path>{};
}

std::set<std::string> FolderPaths::extensions(const std::string& folder_name) const {
  const Folder* f = find(map_legacy(folder_name));
  return f ? f->extensions : std::set<std::string>{};
}

void FolderPaths::add_model_folder_path(const std::string& folder_name, const path& dir, bool is_default) {
  const std::string name = map_legacy(folder_name);
  Folder* f = find(name);
  if (!f) {
    folders_.push_back({name, Folder{{dir}, {}}});
    return;
  }
  auto& paths = f->paths;
  auto it = std::find_if(paths.begin(), paths.end(), [&](const path& p) { return p.native() == dir.native(); });
  if (it != paths.end()) {
    if (is_default && it != paths.begin()) {
      path moved = *it;
      paths.erase(it);
      paths.insert(paths.begin(), moved);
    }
  } else if (is_default) {
    paths.insert(paths.begin(), dir);
  } else {
    paths.push_back(dir);
  }
}

void FolderPaths::load_extra_model_paths(const path& yaml_file) {
  const std::string file = yaml_file.string();
  std::error_code ec;
  if (fs::is_directory(yaml_file, ec)) {
    throw std::runtime_error("cannot read extra model paths file '" + file + "': it is a directory");
  }
  std::ifstream in(yaml_file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read extra model paths file '" + file + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw std::runtime_error("cannot read extra model paths file '" + file + "'");

  YAML::Node root;
  try {
    root = YAML::Load(buffer.str());
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("malformed extra model paths file '" + file + "': " + e.what());
  }
  if (!root.IsMap()) {
    throw std::runtime_error("malformed extra model paths file '" + file + "': the document must be a mapping of sections");
  }

  const std::string yaml_dir = py_dirname(py_abspath(file));
  struct Entry {
    std::string folder;
    std::string dir;
    bool is_default;
  };
  std::vector<Entry> entries;  // validated first, applied afterwards: a bad file changes nothing

  try {
    for (auto section = root.begin(); section != root.end(); ++section) {
      const std::string section_name = scalar_text(section->first, "a section name", file);
      const YAML::Node conf = section->second;
      if (!conf || conf.IsNull()) continue;
      if (!conf.IsMap()) {
        throw std::runtime_error("extra model paths file '" + file + "': section '" + section_name + "' must be a mapping");
      }
      std::optional<std::string> base_path;
      bool is_default = false;
      for (auto kv = conf.begin(); kv != conf.end(); ++kv) {
        const std::string key = scalar_text(kv->first, "a key in section '" + section_name + "'", file);
        if (key == "base_path") {
          if (kv->second.IsNull()) {
            throw std::runtime_error("extra model paths file '" + file + "': base_path of section '" + section_name + "' is empty");
          }
          std::string bp = py_expandvars(py_expanduser(scalar_text(kv->second, "base_path", file)));
          if (!py_isabs(bp)) bp = py_abspath(py_join(yaml_dir, bp));
          base_path = bp;
        } else if (key == "is_default") {
          is_default = truthy(kv->second);
        }
      }
      for (auto kv = conf.begin(); kv != conf.end(); ++kv) {
        const std::string folder = kv->first.Scalar();
        if (folder == "base_path" || folder == "is_default") continue;
        if (!kv->second || kv->second.IsNull()) {
          throw std::runtime_error("extra model paths file '" + file + "': folder '" + folder + "' in section '" + section_name + "' has no path");
        }
        const std::string value = scalar_text(kv->second, "the value of '" + folder + "'", file);
        size_t start = 0;
        while (start <= value.size()) {
          size_t nl = value.find('\n', start);
          if (nl == std::string::npos) nl = value.size();
          std::string line = value.substr(start, nl - start);
          start = nl + 1;
          if (line.empty()) continue;
          std::string full = line;
          if (base_path && !base_path->empty()) {
            full = py_join(*base_path, line);
          } else if (!py_isabs(full)) {
            full = py_abspath(py_join(yaml_dir, line));
          }
          entries.push_back({folder, py_normpath(full), is_default});
        }
      }
    }
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("malformed extra model paths file '" + file + "': " + e.what());
  }

  for (const Entry& e : entries) {
    spdlog::info("Adding extra search path {} {}", e.folder, e.dir);
    add_model_folder_path(e.folder, path(e.dir), e.is_default);
  }
}

void FolderPaths::add_output_model_folders() {
  const std::string out = output_dir_.string();
  add_model_folder_path("checkpoints", path(py_join(out, "checkpoints")));
  add_model_folder_path("clip", path(py_join(out, "clip")));
  add_model_folder_path("vae", path(py_join(out, "vae")));
  add_model_folder_path("diffusion_models", path(py_join(out, "diffusion_models")));
  add_model_folder_path("loras", path(py_join(out, "loras")));
}

std::vector<std::string> FolderPaths::get_filename_list(const std::string& folder_name) const {
  const std::string name = map_legacy(folder_name);
  const Folder* folder = find(name);
  if (!folder) return {};
  const std::vector<path> roots = folder->paths;
  const std::set<std::string> exts = folder->extensions;

  std::optional<Listing> cached;
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(name);
    if (it != cache_.end()) cached = it->second;
  }
  if (cached) {
    bool valid = true;
    for (const auto& [dir, mtime] : cached->dir_mtimes) {
      std::error_code ec;
      auto now = fs::last_write_time(dir, ec);
      if (ec || now != mtime) {
        valid = false;
        break;
      }
    }
    if (valid) {
      for (const path& root : roots) {
        std::error_code ec;
        if (fs::is_directory(root, ec) && !cached->dir_mtimes.count(root)) {
          valid = false;
          break;
        }
      }
    }
    if (valid) return cached->files;
  }

  Listing listing;
  std::set<std::string> names;
  for (const path& root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    auto t = fs::last_write_time(root, ec);
    if (!ec) {
      listing.dir_mtimes[root] = t;
    } else {
      spdlog::warn("Warning: Unable to access {}. Skipping this path.", root.string());
    }
    std::vector<std::string> files;
    ScanState st{&files, &listing.dir_mtimes, {}};
    walk(root, "", st);
    for (std::string& f : files) {
      if (accepts(exts, f)) names.insert(std::move(f));
    }
  }
  listing.files.assign(names.begin(), names.end());  // std::string order = code point order

  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_[name] = listing;
  return listing.files;
}

std::optional<FolderPaths::path> FolderPaths::get_full_path(const std::string& folder_name,
                                                            const std::string& filename) const {
  const Folder* folder = find(map_legacy(folder_name));
  if (!folder) return std::nullopt;
  // os.path.relpath(os.path.join("/", filename), "/")
  std::string rel = py_normpath(py_join("/", filename));
  size_t first = rel.find_first_not_of('/');
  rel = first == std::string::npos ? "." : rel.substr(first);
  for (const path& dir : folder->paths) {
    path full = path(py_join(dir.string(), rel));
    std::error_code ec;
    if (fs::is_regular_file(full, ec)) return full;
    std::error_code lec;
    if (fs::is_symlink(fs::symlink_status(full, lec))) {
      spdlog::warn("WARNING path {} exists but doesn't link anywhere, skipping.", full.string());
    }
  }
  return std::nullopt;
}

FolderPaths::path FolderPaths::get_full_path_or_raise(const std::string& folder_name, const std::string& filename) const {
  auto full = get_full_path(folder_name, filename);
  if (!full) {
    throw ComfyError("FileNotFoundError",
                     "Model in folder '" + folder_name + "' with filename '" + filename + "' not found.");
  }
  return *full;
}

std::pair<std::string, std::optional<std::string>> FolderPaths::split_annotation(const std::string& name) {
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  // Like folder_paths.annotated_filepath: the bracketed suffix is matched, and one more character
  // (the space) is cut.
  auto cut = [&](size_t n) { return name.substr(0, name.size() >= n ? name.size() - n : 0); };
  if (ends_with("[output]")) return {cut(9), std::string("output")};
  if (ends_with("[input]")) return {cut(8), std::string("input")};
  if (ends_with("[temp]")) return {cut(7), std::string("temp")};
  return {name, std::nullopt};
}

FolderPaths::path FolderPaths::get_annotated_filepath(const std::string& name, const std::optional<path>& default_dir) const {
  auto [file, type] = split_annotation(name);
  path base;
  if (type) {
    base = *directory_by_type(*type);
  } else if (default_dir) {
    base = *default_dir;
  } else {
    base = input_dir_;
  }
  return path(py_join(base.string(), file));
}

bool FolderPaths::exists_annotated_filepath(const std::string& name) const {
  std::error_code ec;
  return fs::exists(get_annotated_filepath(name), ec);
}

std::vector<std::string> FolderPaths::list_input_files() const {
  std::vector<std::string> out;
  std::error_code ec;
  fs::directory_iterator it(input_dir_, ec);
  if (ec) return out;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    std::error_code fec;
    if (fs::is_regular_file(it->path(), fec)) out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

FolderPaths::SavePath FolderPaths::get_save_image_path(const std::string& filename_prefix, const path& output_dir,
                                                       int image_width, int image_height) const {
  std::string prefix = filename_prefix;
  if (prefix.find('%') != std::string::npos) {
    replace_all(prefix, "%width%", std::to_string(image_width));
    replace_all(prefix, "%height%", std::to_string(image_height));
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    replace_all(prefix, "%year%", std::to_string(tm.tm_year + 1900));
    replace_all(prefix, "%month%", two_digits(tm.tm_mon + 1));
    replace_all(prefix, "%day%", two_digits(tm.tm_mday));
    replace_all(prefix, "%hour%", two_digits(tm.tm_hour));
    replace_all(prefix, "%minute%", two_digits(tm.tm_min));
    replace_all(prefix, "%second%", two_digits(tm.tm_sec));
  }

  const std::string normalised = py_normpath(prefix);
  const std::string subfolder = py_dirname(normalised);
  const std::string filename = py_basename(normalised);
  const std::string out_dir = output_dir.string();
  const std::string full_output_folder = subfolder.empty() ? out_dir : py_join(out_dir, subfolder);

  // os.path.commonpath((output_dir, abspath(full_output_folder))) must be output_dir.
  const std::string abs_out = py_abspath(out_dir);
  const std::string abs_full = py_abspath(full_output_folder);
  auto comps = [](const std::string& s) {
    std::vector<std::string> v;
    for (auto& c : split_components(s)) {
      if (!c.empty() && c != ".") v.push_back(c);
    }
    return v;
  };
  const auto a = comps(abs_out);
  const auto b = comps(abs_full);
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
  if (common != a.size()) {
    std::string commonpath = "/";
    for (size_t i = 0; i < common; ++i) commonpath += (i ? "/" : "") + a[i];
    std::string err = "**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: " +
                      abs_full + "\n         output_dir: " + out_dir + "\n         commonpath: " + commonpath;
    spdlog::error(err);
    throw ComfyError("Exception", err);
  }

  SavePath result;
  result.full_output_folder = full_output_folder;
  result.filename = filename;
  result.subfolder = subfolder;
  result.filename_prefix = prefix;

  // map_filename measures the basename of the (unnormalised) prefix, as ComfyUI does.
  const size_t prefix_len = utf8_length(py_basename(prefix));
  std::error_code ec;
  if (!fs::exists(full_output_folder, ec)) {
    fs::create_directories(full_output_folder, ec);
    if (ec) throw ComfyError("OSError", "cannot create output folder '" + full_output_folder + "': " + ec.message());
    result.counter = 1;
    return result;
  }
  fs::directory_iterator it(full_output_folder, ec);
  if (ec) throw ComfyError("OSError", "cannot list output folder '" + full_output_folder + "': " + ec.message());
  std::optional<long long> best;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string entry = it->path().filename().string();
    const size_t cut = utf8_prefix_bytes(entry, prefix_len + 1);
    const std::string head = entry.substr(0, cut);
    if (head.empty() || head.back() != '_' || head.compare(0, head.size() - 1, filename) != 0 ||
        head.size() - 1 != filename.size()) {
      continue;
    }
    const std::string rest = entry.substr(cut);
    const long long digits = py_int(rest.substr(0, rest.find('_'))).value_or(0);
    if (!best || digits > *best) best = digits;
  }
  if (!best) {
    result.counter = 1;
  } else {
    long long next = (*best == LLONG_MAX) ? LLONG_MAX : *best + 1;
    result.counter = static_cast<int>(std::clamp<long long>(next, INT_MIN, INT_MAX));
  }
  return result;
}

}  // namespace comfy

namespace comfy {

nlohmann::ordered_json FolderPaths::file_fingerprint(const std::string& folder_name, const std::string& filename) const {
  auto full = get_full_path(folder_name, filename);
  if (!full) return nullptr;
  std::error_code ec;
  auto size = std::filesystem::file_size(*full, ec);
  if (ec) return nullptr;
  auto mtime = std::filesystem::last_write_time(*full, ec);
  if (ec) return nullptr;
  return nlohmann::ordered_json::array({full->string(), size, static_cast<int64_t>(mtime.time_since_epoch().count())});
}

}  // namespace comfy
