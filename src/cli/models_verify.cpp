// `comfycpp models verify|dedupe` (models_verify.h).
#include "cli/models_verify.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include "cli/models.h"
#include "core/text.h"
#include "cli/app.h"
#include "core/error.h"
#include "core/json.h"
#include "io/gguf.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "store/hash_cache.h"

namespace comfy {

namespace fs = std::filesystem;

namespace {

const std::set<std::string>& model_extensions() {
  static const std::set<std::string> e = {".ckpt", ".pt",  ".pt2", ".bin", ".pth",
                                          ".safetensors", ".pkl", ".sft", ".gguf"};
  return e;
}

bool is_part(const fs::path& p) { return ascii_lower(p.extension().string()) == ".part"; }

// Every model folder but the ones that hold no weights.
std::vector<std::string> weight_folders(const FolderPaths& folders) {
  std::vector<std::string> out;
  for (const std::string& n : folders.folder_names())
    if (n != "custom_nodes" && n != "configs" && n != "diffusers") out.push_back(n);
  return out;
}

std::string rel_name(const fs::path& file, const fs::path& dir) {
  return file.lexically_relative(dir).generic_string();
}

std::shared_ptr<HashCache> open_cache(const FolderPaths& folders) {
  try {
    return std::make_shared<HashCache>(folders.user_directory() / "__comfycpp" / "model_hashes.sqlite");
  } catch (const std::exception& e) {
    spdlog::warn("hash cache unavailable ({}); hashing without it", e.what());
    return nullptr;
  }
}

std::string cached_sha256(HashCache* cache, const fs::path& file) {
  auto compute = [](const fs::path& p) { return io::sha256_file_hex(p); };
  return cache ? cache->digest(file, "sha256", compute) : compute(file);
}

// ---------------------------------------------------------------------------------------------
// verify

struct VerifyArgs {
  DirectoryArgs dirs;
  std::string target;
  bool json_output = false;
};

// The first token of a sha256sum line ("HEX  name" or "HEX *name"), lower-cased, when it is 64 hex digits.
std::optional<std::string> read_sidecar(const fs::path& sidecar) {
  std::ifstream in(sidecar);
  std::string tok;
  if (!(in >> tok)) return std::nullopt;
  tok = ascii_lower(tok);
  if (tok.size() != 64 || !std::all_of(tok.begin(), tok.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
    return std::nullopt;
  }
  return tok;
}

json verify_file(HashCache* cache, const fs::path& file) {
  json r = {{"path", file.string()}, {"checks", json::array()}, {"status", "ok"}};
  std::error_code ec;
  r["size"] = fs::file_size(file, ec);
  auto check = [&](const std::string& name, bool ok, const std::string& detail) {
    r["checks"].push_back({{"check", name}, {"ok", ok}, {"detail", detail}});
    if (!ok) r["status"] = "failed";
  };
  if (is_part(file)) {
    r["status"] = "incomplete";
    r["format"] = "partial download";
    r["checks"].push_back({{"check", "complete"}, {"ok", false},
                           {"detail", "an incomplete download (.part), not a model; resume it with `models download`"}});
    return r;
  }
  // 1. The header parses and every tensor lies inside the file.
  try {
    if (io::is_gguf_file(file)) {
      auto g = io::GgufFile::open(file);
      r["format"] = "gguf";
      check("header", true, "GGUF version " + std::to_string(g->version()) + ", " + std::to_string(g->tensors().size()) +
                                " tensors inside the file");
    } else if (io::is_pickle_extension(file)) {
      io::PickleCheckpoint ck = io::load_pickle_checkpoint(file);
      r["format"] = "pickle";
      check("header", true, "pickle (" + ck.format + "), " + std::to_string(ck.tensors.size()) + " tensors");
    } else {
      auto s = SafetensorsFile::open(file);
      r["format"] = "safetensors";
      check("header", true, std::to_string(s->keys().size()) + " tensors; data ends at the end of the file");
    }
  } catch (const std::exception& e) {
    if (!r.contains("format")) r["format"] = file.has_extension() ? ascii_lower(file.extension().string()).substr(1) : "unknown";
    check("header", false, e.what());
  }
  // 2. Digests: the cached one (bit rot) and a sidecar, each compared with the bytes as they are now.
  std::optional<std::string> now;
  auto current = [&]() -> const std::string& {
    if (!now) now = io::sha256_file_hex(file);
    return *now;
  };
  try {
    if (cache) {
      if (auto stored = cache->get(file, "sha256")) {
        const bool same = current() == *stored;
        check("cached sha256", same,
              same ? "matches the SHA-256 recorded for this size and mtime"
                   : "the content changed although its size and mtime did not (bit rot or a tampered file): recorded " +
                         *stored + ", now " + current());
      }
    }
    fs::path sidecar = file;
    sidecar += ".sha256";
    if (fs::exists(sidecar, ec)) {
      if (auto want = read_sidecar(sidecar)) {
        const bool same = current() == *want;
        check("sidecar sha256", same,
              same ? "matches " + sidecar.filename().string()
                   : sidecar.filename().string() + " says " + *want + ", the file hashes to " + current());
      } else {
        check("sidecar sha256", false, sidecar.string() + " holds no SHA-256 (sha256sum format: HEX  NAME)");
      }
    }
  } catch (const std::exception& e) {
    check("read", false, e.what());
  }
  if (now) r["sha256"] = *now;
  return r;
}

std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink |
                                                           fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    const std::string ext = ascii_lower(it->path().extension().string());
    if (model_extensions().count(ext) || ext == ".part") out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

int verify_command(const VerifyArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  std::vector<fs::path> files;
  std::error_code ec;
  const std::string folder = a.target.empty() ? "" : FolderPaths::map_legacy(a.target);
  if (!a.target.empty() && fs::is_regular_file(a.target, ec)) {
    files.push_back(fs::absolute(a.target).lexically_normal());
  } else if (a.target.empty() || folders->has_folder(folder)) {
    for (const ModelFileEntry& e : walk_model_files(*folders, folder, true)) files.push_back(e.path);
  } else if (fs::is_directory(a.target, ec)) {
    files = files_under(fs::absolute(a.target).lexically_normal());
  } else if (const auto slash = a.target.find('/'); slash != std::string::npos &&
                                                     folders->has_folder(FolderPaths::map_legacy(a.target.substr(0, slash)))) {
    auto p = folders->get_full_path(FolderPaths::map_legacy(a.target.substr(0, slash)), a.target.substr(slash + 1));
    if (!p) throw ComfyError("FileNotFoundError", "no model file '" + a.target + "' in the model folders");
    files.push_back(*p);
  } else {
    throw ComfyError("FileNotFoundError", "'" + a.target + "' is neither a file, a directory, a model folder nor FOLDER/NAME");
  }
  auto cache = open_cache(*folders);
  json results = json::array();
  int failed = 0, incomplete = 0;
  for (const fs::path& f : files) {
    json r = verify_file(cache.get(), f);
    if (r["status"] == "failed") ++failed;
    if (r["status"] == "incomplete") ++incomplete;
    results.push_back(std::move(r));
  }
  const int rc = failed > 0 ? 1 : 0;
  if (a.json_output) {
    std::cout << json{{"files", results}, {"checked", results.size()}, {"failed", failed}, {"incomplete", incomplete}}.dump(2)
              << "\n";
    return rc;
  }
  for (const json& r : results) {
    const std::string status = r["status"];
    std::cout << (status == "ok" ? "OK      " : status == "failed" ? "FAILED  " : "PARTIAL ") << r["path"].get<std::string>()
              << "\n";
    for (const json& c : r["checks"]) {
      if (status != "ok" && !c["ok"].get<bool>()) std::cout << "        " << c["check"].get<std::string>() << ": " << c["detail"].get<std::string>() << "\n";
    }
  }
  std::cout << results.size() << " files checked, " << failed << " failed, " << incomplete << " incomplete downloads\n";
  return rc;
}

// ---------------------------------------------------------------------------------------------
// dedupe

struct DedupeArgs {
  DirectoryArgs dirs;
  bool json_output = false;
  bool link = false;
};

bool same_bytes(const fs::path& a, const fs::path& b) {
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  if (!fa || !fb) return false;
  std::vector<char> ba(1 << 20), bb(1 << 20);
  while (true) {
    fa.read(ba.data(), static_cast<std::streamsize>(ba.size()));
    fb.read(bb.data(), static_cast<std::streamsize>(bb.size()));
    if (fa.gcount() != fb.gcount()) return false;
    if (fa.gcount() == 0) return fa.eof() && fb.eof();
    if (std::memcmp(ba.data(), bb.data(), static_cast<size_t>(fa.gcount())) != 0) return false;
  }
}

// Replaces `copy` by a hard link to `keep`: a link under a temporary name in copy's directory,
// then rename(2) over the copy, so that at every moment `copy` names a whole file. "" on
// success, else why the copy was kept.
std::string link_over(const fs::path& keep, const fs::path& copy) {
  struct stat sk {}, sc {};
  if (::stat(keep.c_str(), &sk) != 0 || ::stat(copy.c_str(), &sc) != 0) return std::string("cannot stat: ") + std::strerror(errno);
  if (sk.st_dev != sc.st_dev) return "on another filesystem than " + keep.string() + " (hard links cannot cross filesystems); kept the copy";
  if (!same_bytes(keep, copy)) return "the bytes differ from " + keep.string() + " (changed since hashed); kept the copy";
  std::mt19937_64 rng(std::random_device{}());
  const fs::path tmp = copy.parent_path() / ("." + copy.filename().string() + ".dedupe-" + std::to_string(rng() % 1000000000));
  if (::link(keep.c_str(), tmp.c_str()) != 0) return std::string("cannot link: ") + std::strerror(errno) + "; kept the copy";
  if (::rename(tmp.c_str(), copy.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return std::string("cannot rename over the copy: ") + std::strerror(err) + "; kept the copy";
  }
  return "";
}

int dedupe_command(const DedupeArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  struct File {
    ModelFileEntry entry;
    uint64_t size = 0;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  std::map<uint64_t, std::vector<File>> by_size;
  for (const ModelFileEntry& e : walk_model_files(*folders)) {
    struct stat st {};
    if (::stat(e.path.c_str(), &st) != 0 || st.st_size == 0) continue;
    by_size[static_cast<uint64_t>(st.st_size)].push_back({e, static_cast<uint64_t>(st.st_size), st.st_dev, st.st_ino});
  }
  auto cache = open_cache(*folders);
  json groups = json::array();
  uint64_t reclaimable = 0, reclaimed = 0;
  int errors = 0;
  for (auto& [size, files] : by_size) {
    if (files.size() < 2) continue;
    std::map<std::string, std::vector<File>> by_digest;
    for (File& f : files) {
      try {
        by_digest[cached_sha256(cache.get(), f.entry.path)].push_back(f);
      } catch (const std::exception& e) {
        spdlog::warn("cannot hash {}: {}", f.entry.path.string(), e.what());
      }
    }
    for (auto& [digest, same] : by_digest) {
      std::set<std::pair<dev_t, ino_t>> inodes;
      for (const File& f : same) inodes.insert({f.dev, f.ino});
      if (same.size() < 2) continue;
      json g = {{"sha256", digest}, {"size", size}, {"files", json::array()}, {"copies", inodes.size() - 1}};
      const uint64_t group_bytes = size * (inodes.size() - 1);
      reclaimable += group_bytes;
      g["reclaimable"] = group_bytes;
      const File& keep = same.front();
      for (const File& f : same) {
        json fj = {{"folder", f.entry.folder}, {"name", f.entry.name}, {"path", f.entry.path.string()}};
        if (&f != &keep && a.link) {
          if (f.dev == keep.dev && f.ino == keep.ino) {
            fj["action"] = "already a hard link";
          } else {
            const std::string why = link_over(keep.entry.path, f.entry.path);
            if (why.empty()) {
              fj["action"] = "linked";
              // Counted once per inode that this link let go (further names of it may remain).
              reclaimed += size;
            } else {
              fj["action"] = "kept";
              fj["reason"] = why;
              if (why.find("another filesystem") == std::string::npos) ++errors;
            }
          }
        }
        g["files"].push_back(std::move(fj));
      }
      groups.push_back(std::move(g));
    }
  }
  json out = {{"groups", groups}, {"reclaimable", reclaimable}};
  if (a.link) out["reclaimed"] = reclaimed;
  const int rc = errors > 0 ? 1 : 0;
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
    return rc;
  }
  if (groups.empty()) {
    std::cout << "no duplicate model files\n";
    return rc;
  }
  for (const json& g : groups) {
    std::cout << g["sha256"].get<std::string>().substr(0, 10) << "  " << human_size(g["size"].get<uint64_t>()) << " x "
              << g["files"].size() << " names, " << g["copies"].get<uint64_t>() << " extra copies\n";
    for (const json& f : g["files"]) {
      std::cout << "    " << f["path"].get<std::string>();
      if (f.contains("action")) std::cout << "  [" << f["action"].get<std::string>() << "]";
      if (f.contains("reason")) std::cout << " " << f["reason"].get<std::string>();
      std::cout << "\n";
    }
  }
  std::cout << human_size(reclaimable) << " reclaimable";
  if (a.link) std::cout << ", " << human_size(reclaimed) << " reclaimed by hard links";
  std::cout << (a.link ? "\n" : " (--link replaces copies with hard links)\n");
  return rc;
}

}  // namespace

std::vector<ModelFileEntry> walk_model_files(const FolderPaths& folders, const std::string& folder, bool include_part) {
  std::vector<ModelFileEntry> out;
  std::set<fs::path> seen;
  const std::vector<std::string> names = folder.empty() ? weight_folders(folders) : std::vector<std::string>{folder};
  for (const std::string& name : names) {
    for (const fs::path& dir : folders.get_folder_paths(name)) {
      for (const fs::path& p : files_under(dir)) {
        if (is_part(p) && !include_part) continue;
        std::error_code ec;
        const fs::path canon = fs::weakly_canonical(p, ec);
        if (!seen.insert(ec ? p : canon).second) continue;
        out.push_back({name, rel_name(p, dir), p});
      }
    }
  }
  return out;
}

std::vector<std::string> gguf_file_list(const FolderPaths& folders, const std::string& folder) {
  std::vector<std::string> out;
  if (folder != "diffusion_models" && folder != "text_encoders") return out;
  for (const fs::path& dir : folders.get_folder_paths(folder)) {
    for (const fs::path& p : files_under(dir)) {
      if (ascii_lower(p.extension().string()) == ".gguf") out.push_back(rel_name(p, dir));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void add_verify_commands(CLI::App& models, int* exit_code) {
  {
    auto args = std::make_shared<VerifyArgs>();
    CLI::App* sub = models.add_subcommand(
        "verify", "Check model files: headers, data inside the file, cached and sidecar SHA-256; .part files.");
    sub->add_option("target", args->target, "a model folder, a directory, a file, or FOLDER/NAME (default: every folder)");
    sub->add_flag("--json", args->json_output, "Print JSON on stdout.");
    args->dirs.add_to(*sub);
    sub->callback([args, exit_code] { *exit_code = run_models_subcommand("verify", args->json_output, args->dirs, [&] { return verify_command(*args); }); });
  }
  {
    auto args = std::make_shared<DedupeArgs>();
    CLI::App* sub = models.add_subcommand("dedupe", "Find identical model files across every folder and root.");
    sub->add_flag("--link", args->link, "Replace each copy with a hard link to the first (same filesystem only).");
    sub->add_flag("--json", args->json_output, "Print JSON on stdout.");
    args->dirs.add_to(*sub);
    sub->callback([args, exit_code] { *exit_code = run_models_subcommand("dedupe", args->json_output, args->dirs, [&] { return dedupe_command(*args); }); });
  }
}

}  // namespace comfy
