// The download manager (model_download.h): libcurl easy handles, one per try, redirects followed
// by hand so that each hop's host is checked and gets (or does not get) a token.
#include "models/model_download.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include <spdlog/spdlog.h>

#include "core/text.h"
#include "core/error.h"

namespace comfy {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const std::vector<std::string>& safe_extensions() {
  static const std::vector<std::string> v = {".safetensors", ".gguf", ".sft"};
  return v;
}
const std::vector<std::string>& pickle_extensions() {
  static const std::vector<std::string> v = {".ckpt", ".pt", ".pth", ".bin", ".pt2", ".pkl"};
  return v;
}

// The URL without its query and fragment: what messages show (a query may carry a token).
std::string url_for_messages(const std::string& url) { return url.substr(0, url.find_first_of("?#")); }

std::string random_id() {
  static std::mutex m;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(m);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::optional<uint64_t> statvfs_free(const fs::path& dir) {
  fs::path p = dir;
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  struct statvfs st {};
  if (p.empty() || ::statvfs(p.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

struct Sha256 {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Sha256() { reset(); }
  ~Sha256() { EVP_MD_CTX_free(ctx); }
  void reset() { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  void update(const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string hex() {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    std::string out;
    char b[3];
    for (unsigned i = 0; i < len; ++i) std::snprintf(b, sizeof b, "%02x", md[i]), out += b;
    return out;
  }
  // Hashes the first `n` bytes of `file`.
  void update_file(const fs::path& file, uint64_t n) {
    std::ifstream in(file, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (n > 0 && in) {
      in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(n, buf.size())));
      auto got = static_cast<uint64_t>(in.gcount());
      if (got == 0) break;
      update(buf.data(), got);
      n -= got;
    }
  }
};

std::string file_sha256(const fs::path& file) {
  Sha256 h;
  std::error_code ec;
  h.update_file(file, fs::file_size(file, ec));
  return h.hex();
}

void curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::string to_string(DownloadStatus s) {
  switch (s) {
    case DownloadStatus::queued: return "queued";
    case DownloadStatus::running: return "running";
    case DownloadStatus::completed: return "completed";
    case DownloadStatus::failed: return "failed";
    case DownloadStatus::cancelled: return "cancelled";
  }
  return "unknown";
}

static DownloadStatus status_from_string(const std::string& s) {
  if (s == "running") return DownloadStatus::running;
  if (s == "completed") return DownloadStatus::completed;
  if (s == "failed") return DownloadStatus::failed;
  if (s == "cancelled") return DownloadStatus::cancelled;
  return DownloadStatus::queued;
}

json DownloadState::to_json() const {
  json j{{"id", id},
         {"url", url_for_messages(request.url)},
         {"directory", request.directory},
         {"filename", request.filename},
         {"path", target.string()},
         {"status", to_string(status)},
         {"bytes_done", bytes_done},
         {"bytes_total", bytes_total},
         {"progress", bytes_total ? static_cast<double>(bytes_done) / static_cast<double>(bytes_total) : 0.0},
         {"speed", speed},
         {"attempts", attempts},
         {"sha256", sha256.empty() ? json(nullptr) : json(sha256)},
         {"expected_sha256", request.sha256.empty() ? json(nullptr) : json(request.sha256)},
         {"error", error.empty() ? json(nullptr) : json(error)}};
  return j;
}

json DownloadState::asset_download_message() const {
  std::string st = status == DownloadStatus::queued      ? "created"
                   : status == DownloadStatus::running   ? "running"
                   : status == DownloadStatus::completed ? "completed"
                                                         : "failed";
  json j{{"task_id", id},
         {"asset_name", target.empty() ? url_file_name(request.url) : target.filename().string()},
         {"bytes_total", bytes_total},
         {"bytes_downloaded", bytes_done},
         {"progress", bytes_total ? static_cast<double>(bytes_done) / static_cast<double>(bytes_total) : 0.0},
         {"status", st},
         {"directory", request.directory},
         {"speed", speed}};
  if (status == DownloadStatus::cancelled) j["error"] = "cancelled";
  else if (!error.empty()) j["error"] = error;
  return j;
}

std::map<std::string, std::string> DownloadOptions::tokens_from_env() {
  std::map<std::string, std::string> out;
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  std::string hf = env("HF_TOKEN");
  if (hf.empty()) hf = env("HUGGING_FACE_HUB_TOKEN");
  if (!hf.empty()) out["huggingface.co"] = hf;
  std::string civitai = env("CIVITAI_API_TOKEN");
  if (!civitai.empty()) out["civitai.com"] = civitai;
  return out;
}

DownloadOptions DownloadOptions::from_env(const fs::path& tokens_file) {
  DownloadOptions o;
  o.host_tokens = tokens_from_env();
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(',', start);
      std::string item = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (!item.empty()) out.push_back(item);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return out;
  };
  if (const char* v = std::getenv("COMFYCPP_DOWNLOAD_TOKENS"))
    for (auto& item : split(v))
      if (auto eq = item.find('='); eq != std::string::npos) o.host_tokens[ascii_lower(item.substr(0, eq))] = item.substr(eq + 1);
  if (const char* v = std::getenv("COMFYCPP_DOWNLOAD_HOSTS")) o.allowed_hosts = split(v);
  if (const char* v = std::getenv("COMFYCPP_ALLOW_PICKLE_DOWNLOADS")) o.allow_pickle = std::string(v) == "1";
  if (const char* v = std::getenv("COMFYCPP_MAX_DOWNLOADS")) o.max_concurrent = std::max(1, std::atoi(v));
  std::error_code ec;
  if (!tokens_file.empty() && fs::exists(tokens_file, ec)) {
    try {
      std::ifstream in(tokens_file, std::ios::binary);
      json doc = json::parse(in);
      if (!doc.is_object()) throw std::runtime_error("not a JSON object");
      for (auto& [host, token] : doc.items())
        if (token.is_string()) o.host_tokens[ascii_lower(host)] = token.get<std::string>();
    } catch (const std::exception&) {
      // The message of a parse error may quote the file (a token): say only which file.
      spdlog::error("ignoring the download tokens file {}: it must be a JSON object {{\"host\": \"token\"}}",
                    tokens_file.string());
    }
  }
  return o;
}

std::string url_host(const std::string& url) {
  std::string l = ascii_lower(url);
  size_t start;
  if (l.rfind("http://", 0) == 0) start = 7;
  else if (l.rfind("https://", 0) == 0) start = 8;
  else throw ComfyError("ValueError", "only http and https URLs can be downloaded, not '" + url_for_messages(url) + "'");
  std::string authority = l.substr(start, l.find_first_of("/?#", start) - start);
  if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  std::string host = authority;
  if (!authority.empty() && authority[0] == '[') {
    host = authority.substr(1, authority.find(']') - 1);
  } else if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
  }
  if (host.empty()) throw ComfyError("ValueError", "the URL '" + url_for_messages(url) + "' has no host");
  return host;
}

bool host_matches(const std::string& host, const std::string& pattern) {
  std::string h = ascii_lower(host), p = ascii_lower(pattern);
  return h == p || (h.size() > p.size() && ends_with(h, "." + p));
}

namespace {

std::string percent_decoded(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit((unsigned char)s[i + 1]) &&
        std::isxdigit((unsigned char)s[i + 2])) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A refused name: "..", backslashes, NUL, absolute, empty or hidden parts; slashes unless
// `subfolders`.
bool unsafe_name(const std::string& name, bool subfolders) {
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos || name.find('\0') != std::string::npos)
    return true;
  if (!subfolders && name.find('/') != std::string::npos) return true;
  size_t start = 0;
  while (true) {
    size_t end = name.find('/', start);
    std::string part = name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part[0] == '.' || part.find("..") != std::string::npos) return true;
    if (end == std::string::npos) return false;
    start = end + 1;
  }
}

}  // namespace

std::string url_file_name(const std::string& url) {
  std::string path = url_for_messages(url);
  return percent_decoded(path.substr(path.rfind('/') + 1));
}

bool has_model_extension(const std::string& name) {
  std::string l = ascii_lower(name);
  for (auto& e : safe_extensions())
    if (ends_with(l, e)) return true;
  for (auto& e : pickle_extensions())
    if (ends_with(l, e)) return true;
  return false;
}

std::string content_disposition_filename(const std::string& header) {
  // Parameters after the disposition type: name=token or name="quoted \"string\"".
  std::map<std::string, std::string> params;
  size_t i = header.find(';');
  while (i != std::string::npos && i < header.size()) {
    ++i;
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
    size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = ascii_lower(header.substr(i, eq - i));
    key.erase(key.find_last_not_of(" \t") + 1);
    size_t p = eq + 1;
    while (p < header.size() && (header[p] == ' ' || header[p] == '\t')) ++p;
    std::string value;
    if (p < header.size() && header[p] == '"') {
      for (++p; p < header.size() && header[p] != '"'; ++p) {
        if (header[p] == '\\' && p + 1 < header.size()) ++p;
        value += header[p];
      }
      i = header.find(';', p);
    } else {
      size_t semi = header.find(';', p);
      value = header.substr(p, semi == std::string::npos ? std::string::npos : semi - p);
      value.erase(value.find_last_not_of(" \t\r\n") + 1);
      i = semi;
    }
    params.emplace(key, value);
  }
  std::string name;
  if (auto it = params.find("filename*"); it != params.end()) {
    // charset'language'percent-encoded (RFC 5987); UTF-8 and ASCII names are used as they are.
    const std::string& v = it->second;
    size_t q1 = v.find('\''), q2 = q1 == std::string::npos ? q1 : v.find('\'', q1 + 1);
    if (q2 != std::string::npos) {
      std::string charset = ascii_lower(v.substr(0, q1));
      if (charset == "utf-8" || charset == "us-ascii" || charset.empty()) name = percent_decoded(v.substr(q2 + 1));
    }
  }
  if (name.empty())
    if (auto it = params.find("filename"); it != params.end()) name = it->second;
  // No path parts: only what follows the last slash or backslash.
  if (auto cut = name.find_last_of("/\\"); cut != std::string::npos) name = name.substr(cut + 1);
  name.erase(0, name.find_first_not_of(" \t"));
  name.erase(name.find_last_not_of(" \t") + 1);
  if (name == "." || name == "..") return "";
  return name;
}

std::string checked_download_filename(const DownloadRequest& req, bool allow_pickle) {
  std::string name = req.filename;
  const bool explicit_name = !name.empty();
  if (!explicit_name) {
    name = url_file_name(req.url);
    if (name.empty())
      throw ComfyError("ValueError", "the URL '" + url_for_messages(req.url) + "' names no file; give a filename");
  }
  if (unsafe_name(name, explicit_name))
    throw ComfyError("ValueError", "refused filename '" + name +
                                       "': a download's filename must stay inside the model folder (a plain name "
                                       "or sub/name; no '..', backslashes, absolute paths or leading dots)");
  std::string l = ascii_lower(name);
  for (auto& e : safe_extensions())
    if (ends_with(l, e)) return name;
  for (auto& e : pickle_extensions()) {
    if (!ends_with(l, e)) continue;
    if (allow_pickle) return name;
    throw ComfyError("ValueError", "refused '" + name + "': " + e +
                                       " is a pickle format that can run code when loaded; only .safetensors, "
                                       ".gguf and .sft are downloaded unless pickle formats are allowed");
  }
  throw ComfyError("ValueError", "refused '" + name + "': only .safetensors, .gguf and .sft files are downloaded" +
                                     std::string(allow_pickle ? " (and pickle formats)" : ""));
}

// ---------------------------------------------------------------------------------------------

struct DownloadManager::Job {
  DownloadState state;
  std::atomic<bool> cancel{false};
  std::chrono::steady_clock::time_point last_notify{};
  uint64_t speed_bytes = 0;
  std::chrono::steady_clock::time_point speed_time{};
};

DownloadManager::DownloadManager(const FolderPaths& folders, DownloadOptions options)
    : folders_(folders), options_(std::move(options)) {
  curl_global();
  if (!options_.free_space) options_.free_space = statvfs_free;
  if (options_.max_concurrent < 1) options_.max_concurrent = 1;
  load_queue();
  for (int i = 0; i < options_.max_concurrent; ++i) workers_.emplace_back([this] { worker_loop(); });
}

DownloadManager::~DownloadManager() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : workers_) t.join();
  std::lock_guard lock(mutex_);
  persist_locked();
}

void DownloadManager::set_listener(Listener listener) {
  std::lock_guard lock(mutex_);
  listener_ = std::move(listener);
}

fs::path DownloadManager::target_dir(const std::string& folder) const {
  auto dirs = folders_.get_folder_paths(folder);
  if (dirs.empty()) throw ComfyError("ValueError", "the model folder '" + folder + "' has no directory");
  return dirs.front();
}

std::string raw_file_url(const std::string& url) {
  std::string host = url_host(url);
  if (!host_matches(host, "huggingface.co")) return url;
  auto pos = url.find("/blob/");
  if (pos == std::string::npos || pos > url.find_first_of("?#")) return url;
  return url.substr(0, pos) + "/resolve/" + url.substr(pos + 6);
}

std::string DownloadManager::enqueue(const DownloadRequest& in) {
  DownloadRequest req = in;
  req.url = raw_file_url(req.url);
  std::string host = url_host(req.url);
  if (!options_.allowed_hosts.empty() &&
      std::none_of(options_.allowed_hosts.begin(), options_.allowed_hosts.end(),
                   [&](const std::string& p) { return host_matches(host, p); }))
    throw ComfyError("ValueError", "the host '" + host + "' is not in the download hosts allow-list");
  req.directory = FolderPaths::map_legacy(req.directory);
  if (req.directory.empty() || !folders_.has_folder(req.directory))
    throw ComfyError("ValueError", "unknown model folder '" + in.directory + "'");
  auto exts = folders_.extensions(req.directory);
  if (exts.empty() || exts.count(".part"))
    throw ComfyError("ValueError", "refused: the model folder '" + req.directory +
                                       "' lists every file, so a partial download would be visible to loaders");
  // A URL that names no model file (Civitai's /api/download/models/ID): the server names it.
  const bool deferred = req.filename.empty() && !has_model_extension(url_file_name(req.url));
  std::string name = deferred ? std::string() : checked_download_filename(req, options_.allow_pickle);
  req.filename = name;
  req.sha256 = ascii_lower(req.sha256);
  if (!req.sha256.empty() &&
      (req.sha256.size() != 64 || req.sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
    throw ComfyError("ValueError", "'" + in.sha256 + "' is not a SHA-256 (64 hex digits)");
  fs::path dir = target_dir(req.directory);
  if (req.size) {
    auto free = options_.free_space(dir);
    if (free && *free < *req.size + options_.free_space_reserve)
      throw ComfyError("OSError", "not enough free space in " + dir.string() + " for " +
                                      (deferred ? url_for_messages(req.url) : name) + ": it needs " +
                                      human_bytes(*req.size) + ", " + human_bytes(*free) + " are free");
  }
  auto job = std::make_shared<Job>();
  job->state.id = random_id();
  job->state.request = req;
  if (!deferred) job->state.target = dir / name;
  if (req.size) job->state.bytes_total = *req.size;
  {
    std::lock_guard lock(mutex_);
    for (auto& j : jobs_)
      if (!deferred && !j->state.finished() && j->state.target == job->state.target)
        throw ComfyError("ValueError", "a download of " + job->state.target.string() + " is already queued (" +
                                           j->state.id + ")");
    jobs_.push_back(job);
    pending_.push_back(job);
    persist_locked();
  }
  spdlog::info("download {} queued: {} -> {}", job->state.id, url_for_messages(req.url),
               deferred ? (dir / "<name from the server>").string() : job->state.target.string());
  notify(job, true);
  cv_.notify_one();
  return job->state.id;
}

std::optional<DownloadState> DownloadManager::get(const std::string& id) const {
  std::lock_guard lock(mutex_);
  for (auto& j : jobs_)
    if (j->state.id == id) return j->state;
  return std::nullopt;
}

std::vector<DownloadState> DownloadManager::list() const {
  std::lock_guard lock(mutex_);
  std::vector<DownloadState> out;
  for (auto& j : jobs_) out.push_back(j->state);
  return out;
}

bool DownloadManager::cancel(const std::string& id) {
  std::shared_ptr<Job> job;
  {
    std::lock_guard lock(mutex_);
    for (auto& j : jobs_)
      if (j->state.id == id) job = j;
    if (!job || job->state.finished()) return false;
    job->cancel = true;
    auto it = std::find(pending_.begin(), pending_.end(), job);
    if (it == pending_.end()) {
      cv_.notify_all();  // a running job in its backoff wait
      return true;
    }
    pending_.erase(it);
    job->state.status = DownloadStatus::cancelled;
    job->state.error = "cancelled";
    persist_locked();
  }
  notify(job, true);
  done_cv_.notify_all();
  return true;
}

DownloadState DownloadManager::wait(const std::string& id) {
  std::unique_lock lock(mutex_);
  std::shared_ptr<Job> job;
  for (auto& j : jobs_)
    if (j->state.id == id) job = j;
  if (!job) throw ComfyError("ValueError", "no download with id '" + id + "'");
  done_cv_.wait(lock, [&] { return job->state.finished() || stopping_; });
  return job->state;
}

void DownloadManager::notify(const std::shared_ptr<Job>& job, bool force) {
  Listener listener;
  DownloadState copy;
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (!force && now - job->last_notify < std::chrono::milliseconds(250)) return;
    job->last_notify = now;
    listener = listener_;
    copy = job->state;
  }
  if (listener) listener(copy);
}

void DownloadManager::worker_loop() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      job = pending_.front();
      pending_.pop_front();
      job->state.status = DownloadStatus::running;
      persist_locked();
    }
    notify(job, true);
    try {
      run_job(job);
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      job->state.status = DownloadStatus::failed;
      job->state.error = e.what();
    }
    bool finished;
    {
      std::lock_guard lock(mutex_);
      if (!job->state.finished()) job->state.status = DownloadStatus::queued;  // stopped: resume next start
      finished = job->state.finished();
      persist_locked();
    }
    if (finished) {
      if (job->state.status == DownloadStatus::completed)
        spdlog::info("download {} completed: {}", job->state.id, job->state.target.string());
      else
        spdlog::warn("download {} {}: {}", job->state.id, to_string(job->state.status), job->state.error);
      notify(job, true);
    }
    done_cv_.notify_all();
  }
}

namespace {

enum class Outcome { ok, retry, fatal, cancelled, stopped };

struct Transfer {
  DownloadManager* manager = nullptr;
  std::function<bool()> should_stop;   // stop or cancel
  std::function<void(uint64_t done, uint64_t total)> progress;
  std::function<std::optional<uint64_t>()> free_space;
  uint64_t reserve = 0;
  std::optional<uint64_t> expected_size;
  fs::path part;
  uint64_t offset = 0;  // bytes already in the part file
  Sha256* hash = nullptr;
  // Names the file from the response's Content-Disposition and sets `part`; false with a message.
  std::function<bool(std::string& error)> name_part;
  // Per response.
  CURL* curl = nullptr;
  long status = 0;
  bool started = false;
  bool abort_fatal = false;
  std::string abort_message;
  std::FILE* file = nullptr;
  uint64_t total = 0;
  std::string error_body;
  std::vector<std::string> headers;

  std::string header(const std::string& name) const {
    std::string want = ascii_lower(name) + ":";
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      if (ascii_lower(it->substr(0, want.size())) == want) {
        std::string v = it->substr(want.size());
        v.erase(0, v.find_first_not_of(" \t"));
        v.erase(v.find_last_not_of(" \t\r\n") + 1);
        return v;
      }
    }
    return "";
  }

  bool begin_body() {
    started = true;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 && status != 206) return true;  // an error or redirect body: kept for messages
    if (part.empty()) {  // not named yet: no Range was sent, so this is the whole file
      std::string error;
      if (!name_part || !name_part(error)) {
        abort_fatal = true;
        abort_message = error.empty() ? "the download has no file name" : error;
        return false;
      }
    }
    curl_off_t length = -1;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (status == 200) {
      // A whole file: the server ignored (or was not sent) a Range.
      offset = 0;
      hash->reset();
      total = length >= 0 ? static_cast<uint64_t>(length) : 0;
    } else {
      std::string range = header("content-range");  // bytes START-END/TOTAL
      unsigned long long start = 0, end = 0, whole = 0;
      if (std::sscanf(range.c_str(), "bytes %llu-%llu/%llu", &start, &end, &whole) < 2 || start != offset) {
        abort_message = "the server answered a range that does not continue the partial file ('" + range + "')";
        std::error_code ec;
        fs::remove(part, ec);
        return false;
      }
      total = whole ? whole : (length >= 0 ? offset + static_cast<uint64_t>(length) : 0);
    }
    if (expected_size && total && total != *expected_size) {
      abort_fatal = true;
      abort_message = "the server's file has " + std::to_string(total) + " bytes, " +
                      std::to_string(*expected_size) + " were expected";
      return false;
    }
    if (total > offset) {
      auto free = free_space();
      if (free && *free < total - offset + reserve) {
        abort_fatal = true;
        abort_message = "not enough free space for " + part.filename().string() + ": " +
                        human_bytes(total - offset) + " more are needed, " + human_bytes(*free) + " are free";
        return false;
      }
    }
    file = std::fopen(part.c_str(), status == 200 ? "wb" : "ab");
    if (!file) {
      abort_fatal = true;
      abort_message = "cannot write " + part.string();
      return false;
    }
    return true;
  }

  static size_t on_header(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    std::string line(data, size * n);
    if (line.rfind("HTTP/", 0) == 0) t->headers.clear();
    t->headers.push_back(line);
    return size * n;
  }

  static size_t on_body(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    size_t bytes = size * n;
    if (!t->started && !t->begin_body()) return 0;
    if (!t->file) {
      if (t->error_body.size() < 2048) t->error_body.append(data, std::min<size_t>(bytes, 2048));
      return bytes;
    }
    if (std::fwrite(data, 1, bytes, t->file) != bytes) {
      t->abort_fatal = true;
      t->abort_message = "writing " + t->part.string() + " failed (disk full?)";
      return 0;
    }
    t->hash->update(data, bytes);
    t->offset += bytes;
    t->progress(t->offset, t->total);
    return bytes;
  }

  static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* t = static_cast<Transfer*>(self);
    return t->should_stop() ? 1 : 0;
  }
};

}  // namespace

void DownloadManager::run_job(const std::shared_ptr<Job>& job) {
  DownloadRequest req;
  fs::path target;
  {
    std::lock_guard lock(mutex_);
    req = job->state.request;
    target = job->state.target;
  }
  auto fail = [&](const std::string& msg) {
    std::lock_guard lock(mutex_);
    job->state.status = DownloadStatus::failed;
    job->state.error = msg;
  };
  std::error_code ec;
  fs::path part;  // empty until the file has a name (Content-Disposition)
  auto set_target = [&](const fs::path& file) {
    target = file;
    part = file.parent_path() / (file.filename().string() + ".part");
  };
  fs::path dir;
  try {
    dir = target.empty() ? target_dir(req.directory) : target.parent_path();
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  fs::create_directories(dir, ec);
  if (ec) return fail("cannot create " + dir.string() + ": " + ec.message());
  if (!target.empty()) set_target(target);
  if (!target.empty() && fs::exists(target, ec)) {
    if (!req.sha256.empty() && file_sha256(target) == req.sha256) {
      std::lock_guard lock(mutex_);
      job->state.status = DownloadStatus::completed;
      job->state.sha256 = req.sha256;
      job->state.bytes_done = job->state.bytes_total = fs::file_size(target, ec);
      return;
    }
    return fail(target.string() + " already exists; remove it first to download it again");
  }

  const std::string first_host = url_host(req.url);
  Sha256 hash;
  for (int attempt = 0;; ++attempt) {
    if (job->cancel) break;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      job->state.attempts = attempt + 1;
    }
    Transfer t;
    t.manager = this;
    t.should_stop = [&] {
      if (job->cancel) return true;
      std::lock_guard lock(mutex_);
      return stopping_;
    };
    t.progress = [&](uint64_t done, uint64_t total) {
      {
        std::lock_guard lock(mutex_);
        auto now = std::chrono::steady_clock::now();
        double dt = std::chrono::duration<double>(now - job->speed_time).count();
        if (job->speed_time.time_since_epoch().count() == 0 || done < job->speed_bytes) {
          job->speed_time = now;
          job->speed_bytes = done;
        } else if (dt >= 0.5) {
          double rate = static_cast<double>(done - job->speed_bytes) / dt;
          job->state.speed = job->state.speed > 0 ? 0.5 * job->state.speed + 0.5 * rate : rate;
          job->speed_time = now;
          job->speed_bytes = done;
        }
        job->state.bytes_done = done;
        if (total) job->state.bytes_total = total;
      }
      notify(job, false);
    };
    t.free_space = [&] { return options_.free_space(target.parent_path()); };
    t.reserve = options_.free_space_reserve;
    t.expected_size = req.size;
    t.part = part;
    t.offset = !part.empty() && fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
    // The server names the file: checked as a given name would be, never replacing a file.
    t.name_part = [&](std::string& error) {
      std::string name = content_disposition_filename(t.header("content-disposition"));
      if (name.empty()) {
        error = "the URL '" + url_for_messages(req.url) +
                "' names no model file and the server sent no file name (Content-Disposition); give a filename";
        return false;
      }
      DownloadRequest named = req;
      named.filename = name;
      try {
        name = checked_download_filename(named, options_.allow_pickle);
      } catch (const ComfyError& e) {
        error = std::string("the server named the file: ") + e.what();
        return false;
      }
      fs::path file = dir / name;
      if (fs::exists(file, ec)) {
        error = file.string() + " already exists; remove it first to download it again";
        return false;
      }
      {
        std::lock_guard lock(mutex_);
        for (auto& j : jobs_)
          if (j != job && !j->state.finished() && j->state.target == file) {
            error = "a download of " + file.string() + " is already queued (" + j->state.id + ")";
            return false;
          }
        job->state.target = file;
        job->state.request.filename = name;
        persist_locked();
      }
      req.filename = name;
      set_target(file);
      t.part = part;
      return true;
    };
    t.hash = &hash;
    hash.reset();
    if (!req.sha256.empty() && t.offset) hash.update_file(part, t.offset);

    Outcome outcome = Outcome::ok;
    std::string message;
    std::string url = req.url;
    bool token_sent = false;
    std::string host;
    for (int hop = 0;; ++hop) {
      host = url_host(url);
      if (!options_.allowed_hosts.empty() &&
          std::none_of(options_.allowed_hosts.begin(), options_.allowed_hosts.end(),
                       [&](const std::string& p) { return host_matches(host, p); })) {
        outcome = Outcome::fatal;
        message = "refused a redirect to '" + host + "': not in the download hosts allow-list";
        break;
      }
      CURL* curl = curl_easy_init();
      t.curl = curl;
      t.started = false;
      t.status = 0;
      t.headers.clear();
      t.error_body.clear();
      curl_slist* headers = nullptr;
      token_sent = false;
      // A token goes to its own host only, and never past a redirect to another host.
      if (host == first_host) {
        for (auto& [token_host, token] : options_.host_tokens) {
          if (token.empty() || !host_matches(host, token_host)) continue;
          headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
          token_sent = true;
          break;
        }
      }
      curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
      curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(curl, CURLOPT_USERAGENT, "comfy.cpp model downloader");
      curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options_.low_speed_timeout_s);
      if (headers) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
      std::string range = std::to_string(t.offset) + "-";
      if (t.offset > 0) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
      curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
      curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
      curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
      curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
      curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &Transfer::on_progress);
      curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
      CURLcode rc = curl_easy_perform(curl);
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      char* redirect = nullptr;
      curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &redirect);
      std::string redirect_url = redirect ? redirect : "";
      if (!t.started && (status == 200 || status == 206) && rc == CURLE_OK) {
        // An empty body: still a (possibly empty) file.
        if (!t.begin_body()) rc = CURLE_WRITE_ERROR;
      }
      if (t.file) std::fclose(t.file), t.file = nullptr;
      curl_easy_cleanup(curl);
      curl_slist_free_all(headers);

      if (rc == CURLE_ABORTED_BY_CALLBACK) {
        outcome = job->cancel ? Outcome::cancelled : Outcome::stopped;
      } else if (rc == CURLE_WRITE_ERROR && !t.abort_message.empty()) {
        outcome = t.abort_fatal ? Outcome::fatal : Outcome::retry;
        message = t.abort_message;
      } else if (status >= 300 && status < 400 && !redirect_url.empty()) {
        if (hop >= options_.max_redirects) {
          outcome = Outcome::fatal;
          message = "too many redirects";
        } else {
          url = redirect_url;
          try {
            url_host(url);
          } catch (const ComfyError& e) {
            outcome = Outcome::fatal;
            message = std::string("refused a redirect: ") + e.what();
            break;
          }
          continue;
        }
      } else if (status == 416 && t.offset > 0) {
        // The part may already be whole; otherwise start over.
        std::string cr = t.header("content-range");
        unsigned long long whole = 0;
        if (std::sscanf(cr.c_str(), "bytes */%llu", &whole) == 1 && whole == t.offset) {
          t.total = whole;
          outcome = Outcome::ok;
        } else {
          fs::remove(part, ec);
          outcome = Outcome::retry;
          message = "the server refused to resume; starting over";
        }
      } else if (status == 401 || status == 403) {
        outcome = Outcome::fatal;
        message = "HTTP " + std::to_string(status) + " from " + host + ": " +
                  (token_sent ? "the token configured for this host was refused (expired, or the model's licence "
                                "must be accepted on its page first)"
                              : "this file needs an access token (set HF_TOKEN for huggingface.co, "
                                "CIVITAI_API_TOKEN for civitai.com, or configure a token for " + host + ")");
      } else if (status == 429 || status >= 500) {
        outcome = Outcome::retry;
        message = "HTTP " + std::to_string(status) + " from " + host;
      } else if (status >= 300 && status != 416) {
        outcome = Outcome::fatal;
        message = "HTTP " + std::to_string(status) + " from " + host + " for " + url_for_messages(url);
      } else if (rc != CURLE_OK) {
        outcome = Outcome::retry;
        message = std::string(curl_easy_strerror(rc)) + " (" + host + ")";
      } else if (t.total && t.offset != t.total) {
        outcome = Outcome::retry;
        message = "the connection ended after " + std::to_string(t.offset) + " of " + std::to_string(t.total) + " bytes";
      } else {
        outcome = Outcome::ok;
      }
      break;
    }

    if (outcome == Outcome::ok) break;
    if (outcome == Outcome::cancelled) break;
    if (outcome == Outcome::stopped) return;
    if (outcome == Outcome::fatal) {
      // A refused or wrong file leaves nothing behind; a full disk keeps the part to resume later.
      if (message.rfind("not enough free space", 0) != 0) fs::remove(part, ec);
      return fail(message);
    }
    if (attempt >= options_.max_retries) return fail(message + " (gave up after " + std::to_string(attempt + 1) + " tries)");
    auto delay = options_.retry_delay * (1LL << std::min(attempt, 6));
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(30));
    spdlog::warn("download {}: {}; retrying in {} ms", job->state.id, message, delay.count());
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, delay, [&] { return stopping_ || job->cancel.load(); });
  }

  if (job->cancel) {
    fs::remove(part, ec);
    std::lock_guard lock(mutex_);
    job->state.status = DownloadStatus::cancelled;
    job->state.error = "cancelled";
    return;
  }
  // Verify, then rename into place.
  uint64_t size = fs::file_size(part, ec);
  if (ec) return fail("the download produced no file");
  if (req.size && size != *req.size) {
    fs::remove(part, ec);
    return fail("size mismatch: got " + std::to_string(size) + " bytes, expected " + std::to_string(*req.size));
  }
  std::string digest = hash.hex();
  if (req.sha256.empty()) digest = file_sha256(part);  // not streamed when no hash was asked for
  if (!req.sha256.empty() && digest != req.sha256) {
    fs::remove(part, ec);
    return fail("SHA-256 mismatch: the downloaded file hashes to " + digest + ", expected " + req.sha256 +
                "; the file was removed");
  }
  if (fs::exists(target, ec)) {
    fs::remove(part, ec);
    return fail(target.string() + " appeared while downloading; not replaced");
  }
  fs::rename(part, target, ec);
  if (ec) return fail("cannot rename " + part.string() + " to " + target.string() + ": " + ec.message());
  std::lock_guard lock(mutex_);
  job->state.status = DownloadStatus::completed;
  job->state.sha256 = digest;
  job->state.bytes_done = size;
  job->state.bytes_total = size;
}

void DownloadManager::persist_locked() const {
  if (options_.queue_file.empty()) return;
  json list = json::array();
  for (auto& j : jobs_) {
    const auto& s = j->state;
    json e{{"id", s.id},
           {"url", s.request.url},
           {"directory", s.request.directory},
           {"filename", s.request.filename},
           {"sha256", s.request.sha256},
           {"status", to_string(s.status)},
           {"bytes_total", s.bytes_total}};
    if (s.request.size) e["size"] = *s.request.size;
    if (!s.error.empty()) e["error"] = s.error;
    if (!s.sha256.empty()) e["file_sha256"] = s.sha256;
    list.push_back(e);
  }
  std::error_code ec;
  fs::create_directories(options_.queue_file.parent_path(), ec);
  fs::path tmp = options_.queue_file;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << json{{"version", 1}, {"downloads", list}}.dump(2);
    if (!out) {
      spdlog::error("cannot write the download queue {}", tmp.string());
      return;
    }
  }
  fs::rename(tmp, options_.queue_file, ec);
  if (ec) spdlog::error("cannot write the download queue {}: {}", options_.queue_file.string(), ec.message());
}

void DownloadManager::load_queue() {
  if (options_.queue_file.empty()) return;
  std::error_code ec;
  if (!fs::exists(options_.queue_file, ec)) return;
  json doc;
  try {
    std::ifstream in(options_.queue_file, std::ios::binary);
    doc = json::parse(in);
  } catch (const std::exception& e) {
    spdlog::error("ignoring the download queue {}: {}", options_.queue_file.string(), e.what());
    return;
  }
  if (!doc.is_object() || !doc.contains("downloads") || !doc["downloads"].is_array()) return;
  for (auto& e : doc["downloads"]) {
    try {
      auto job = std::make_shared<Job>();
      auto& s = job->state;
      s.id = e.at("id").get<std::string>();
      s.request.url = e.at("url").get<std::string>();
      s.request.directory = e.at("directory").get<std::string>();
      s.request.filename = e.at("filename").get<std::string>();
      s.request.sha256 = e.value("sha256", "");
      if (e.contains("size")) s.request.size = e["size"].get<uint64_t>();
      s.status = status_from_string(e.value("status", "queued"));
      s.error = e.value("error", "");
      s.sha256 = e.value("file_sha256", "");
      s.bytes_total = e.value("bytes_total", uint64_t{0});
      // Re-checked as a new request would be: a hand-edited queue cannot escape the folders.
      url_host(s.request.url);
      if (!folders_.has_folder(s.request.directory)) continue;
      auto exts = folders_.extensions(s.request.directory);
      if (exts.empty() || exts.count(".part")) continue;
      if (!s.request.filename.empty() || has_model_extension(url_file_name(s.request.url))) {
        s.request.filename = checked_download_filename(s.request, options_.allow_pickle);
        s.target = target_dir(s.request.directory) / s.request.filename;
      }
      if (s.status == DownloadStatus::running) s.status = DownloadStatus::queued;
      if (s.status == DownloadStatus::completed) s.bytes_done = s.bytes_total;
      jobs_.push_back(job);
      if (s.status == DownloadStatus::queued) pending_.push_back(job);
    } catch (const std::exception& ex) {
      spdlog::error("skipping a download queue entry in {}: {}", options_.queue_file.string(), ex.what());
    }
  }
}

}  // namespace comfy
