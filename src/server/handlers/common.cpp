// Helpers the handlers share: JSON bodies and paths that must stay inside their directory.
#include <sys/stat.h>

#include "server/handlers/handlers.h"

namespace comfy::server {

namespace fs = std::filesystem;

json body_json(const Request& req) {
  // aiohttp's request.json(): a JSONDecodeError escapes the handler -> plain-text 500.
  return json::parse(req.body);
}

bool is_within(const fs::path& base, const fs::path& p) {
  auto b = base.lexically_normal(), q = p.lexically_normal();
  auto bi = b.begin(), qi = q.begin();
  for (; bi != b.end(); ++bi, ++qi) {
    if (bi->empty()) continue;  // a trailing separator
    if (qi == q.end() || *bi != *qi) return false;
  }
  return true;
}

std::optional<fs::path> contained_path(const fs::path& base, const std::string& rel) {
  if (rel.find('\0') != std::string::npos || rel.find('\\') != std::string::npos) return std::nullopt;
  fs::path r(rel);
  if (r.is_absolute()) return std::nullopt;
  for (auto& part : r)
    if (part == "..") return std::nullopt;
  fs::path joined = (base / r).lexically_normal();
  if (!is_within(base, joined)) return std::nullopt;
  // Symlinks: what the path resolves to must stay inside what the base resolves to.
  std::error_code ec;
  fs::path real_base = fs::weakly_canonical(base, ec);
  if (ec) return std::nullopt;
  fs::path real = fs::weakly_canonical(joined, ec);
  if (ec || !is_within(real_base, real)) return std::nullopt;
  return joined;
}

double file_time_seconds(const fs::path& p, bool created) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  const timespec& t = created ? st.st_ctim : st.st_mtim;
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

}  // namespace comfy::server
