#include "text/embedding_files.h"

#include <system_error>

namespace comfy {
namespace {

namespace fs = std::filesystem;

// Python's os.path.abspath: absolute and lexically normalised, without a trailing separator.
fs::path abspath(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec).lexically_normal();
  if (!a.has_filename() && a.has_parent_path() && a != a.root_path()) a = a.parent_path();
  return a;
}

bool within(const fs::path& dir, const fs::path& p) {
  auto d = dir.begin(), q = p.begin();
  for (; d != dir.end(); ++d, ++q)
    if (q == p.end() || *d != *q) return false;
  return true;
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

std::optional<fs::path> find_embedding_file(const std::vector<fs::path>& directories, const std::string& name) {
  // expand_directory_list: each directory, then every folder below it.
  std::vector<fs::path> dirs;
  for (const auto& d : directories) {
    dirs.push_back(d);
    std::error_code ec;
    for (fs::recursive_directory_iterator it(d, fs::directory_options::follow_directory_symlink |
                                                    fs::directory_options::skip_permission_denied,
                                             ec),
         end;
         !ec && it != end; it.increment(ec)) {
      std::error_code ec2;
      if (it->is_directory(ec2)) dirs.push_back(it->path());
    }
  }
  for (const auto& d : dirs) {
    const fs::path dir = abspath(d);
    const fs::path candidate = abspath(d / name);
    if (!within(dir, candidate)) continue;
    if (is_file(candidate)) return candidate;
    for (const char* ext : {".safetensors", ".pt", ".bin"}) {
      fs::path with_ext = candidate;
      with_ext += ext;
      if (is_file(with_ext)) return with_ext;
    }
  }
  return std::nullopt;
}

}  // namespace comfy
