#include "text/data_paths.h"

#include <cstdlib>
#include <system_error>

#include "core/error.h"

namespace comfy {

std::vector<std::filesystem::path> data_search_path() {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("COMFYCPP_DATA_DIR"); env && *env) dirs.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && !exe.empty()) {
    const fs::path bin = exe.parent_path();
    dirs.push_back(bin / "data");
    dirs.push_back((bin / ".." / "data").lexically_normal());
    dirs.push_back((bin / ".." / "share" / "comfycpp" / "data").lexically_normal());
  }
#ifdef COMFY_SOURCE_DATA_DIR
  dirs.emplace_back(COMFY_SOURCE_DATA_DIR);
#endif
  return dirs;
}

std::filesystem::path find_data_path(const std::string& relative) {
  std::string searched;
  for (const auto& dir : data_search_path()) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / relative, ec)) return dir / relative;
    searched += "\n  " + dir.string();
  }
  throw ComfyError("FileNotFoundError", "data file '" + relative + "' not found; searched:" + searched +
                                            "\n(set COMFYCPP_DATA_DIR to the folder holding comfy.cpp's data/)");
}

}  // namespace comfy
