// GET / and GET /{path}: the built web UI. Registered after every API route, so it only answers
// paths no API route claims. index.html is never cached (it names the hashed bundles); files
// under assets/ carry a content hash in their names and are cached for a year.
#include "server/handlers/static_files.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace comfy::server {

namespace fs = std::filesystem;

namespace {

std::mutex root_mutex;
fs::path configured_root;

fs::path executable_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

std::string content_type_of(const fs::path& p) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".map", "application/json"},
      {".svg", "image/svg+xml"}, {".png", "image/png"}, {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"}, {".webp", "image/webp"}, {".gif", "image/gif"},
      {".ico", "image/vnd.microsoft.icon"}, {".woff", "font/woff"}, {".woff2", "font/woff2"},
      {".ttf", "font/ttf"}, {".txt", "text/plain; charset=utf-8"}, {".wasm", "application/wasm"}};
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

// A decoded relative path that stays inside the root: no NUL, no backslash, no absolute path,
// no ".." segment; the resolved file (symlinks followed) must still be under the root.
std::optional<fs::path> resolve(const fs::path& root, const std::string& rel) {
  if (rel.find('\0') != std::string::npos || rel.find('\\') != std::string::npos) return std::nullopt;
  if (!rel.empty() && rel[0] == '/') return std::nullopt;
  std::stringstream ss(rel);
  std::string seg;
  while (std::getline(ss, seg, '/'))
    if (seg == "..") return std::nullopt;
  std::error_code ec;
  fs::path canon_root = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  fs::path target = fs::canonical(canon_root / rel, ec);
  if (ec) return std::nullopt;
  auto [r, t] = std::mismatch(canon_root.begin(), canon_root.end(), target.begin(), target.end());
  if (r != canon_root.end()) return std::nullopt;
  if (fs::is_directory(target, ec)) target /= "index.html";
  if (!fs::is_regular_file(target, ec)) return std::nullopt;
  return target;
}

Response serve_file(const fs::path& file, const std::string& cache) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return not_found();
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Response res = Response::bytes(std::move(body), content_type_of(file));
  res.set_header("Cache-Control", cache);
  return res;
}

}  // namespace

void set_front_end_root(const fs::path& dir) {
  std::lock_guard lock(root_mutex);
  configured_root = dir;
}

fs::path front_end_root() {
  {
    std::lock_guard lock(root_mutex);
    if (!configured_root.empty()) return configured_root;
  }
  std::vector<fs::path> candidates;
  fs::path exe_dir = executable_dir();
  if (!exe_dir.empty()) {
    candidates.push_back(exe_dir / "web" / "dist");         // an installed layout
    candidates.push_back(exe_dir.parent_path() / "web" / "dist");  // build/comfycpp in the source tree
  }
  std::error_code ec;
  for (auto& c : candidates)
    if (fs::is_regular_file(c / "index.html", ec)) return c;
  return candidates.empty() ? fs::path("web/dist") : candidates.front();
}

Response get_front_end_index(Context&, Request&) {
  fs::path root = front_end_root();
  std::error_code ec;
  if (!fs::is_regular_file(root / "index.html", ec))
    return Response::text("404: the comfy.cpp web UI is not built yet (no index.html in " + root.string() +
                              "; run `make` or pass --front-end-root); the ComfyUI API is served under /api/",
                          404);
  return serve_file(root / "index.html", "no-cache");
}

Response get_front_end_file(Context&, Request& req) {
  std::string rel = req.param("path");
  if (rel.empty()) return not_found();
  fs::path root = front_end_root();
  auto file = resolve(root, rel);
  if (!file) return not_found();
  bool hashed = rel.rfind("assets/", 0) == 0;
  return serve_file(*file, hashed ? "public, max-age=31536000, immutable" : "no-cache");
}

}  // namespace comfy::server
