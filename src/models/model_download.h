// Server-side model downloads (issue 6): an http(s) URL into a model folder, staged as NAME.part
// next to the target (a name no loader lists), resumed with HTTP Range, retried with backoff,
// checked against the expected size and SHA-256 when known, then renamed into place atomically.
// A free-space check first (injectable for tests), a concurrency limit, a queue persisted as JSON
// so it survives restarts, progress callbacks (bytes, total, speed) and cancel.
//
// Security: per-host tokens (HF_TOKEN for huggingface.co, CIVITAI_API_TOKEN for civitai.com, or
// configured) go only to their own host and its subdomains, never across a redirect to another
// host, and are never logged nor persisted. An optional hosts allow-list is checked on every hop
// of a redirect chain. Only .safetensors, .gguf and .sft unless pickle formats are allowed.
// A filename may name a subfolder of the model folder ("sd15/x.safetensors", created on demand);
// "..", backslashes, absolute paths and hidden parts are refused; nothing is written outside the
// model folders; no half-written file ever has a loadable name. Without a filename the name is the
// URL's last path segment, or, when that names no model file (Civitai's /api/download/models/ID),
// the server's Content-Disposition (filename*=UTF-8''... or filename="..."), reduced to a plain
// name and checked like any other.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "models/folder_paths.h"

namespace comfy {

struct DownloadOptions {
  // Hosts a download may touch (each hop of a redirect chain); a host matches itself and its
  // subdomains. Empty: any host.
  std::vector<std::string> allowed_hosts;
  bool allow_pickle = false;          // .ckpt .pt .pth .bin .pt2 .pkl too
  int max_concurrent = 2;
  int max_retries = 4;                // after the first try
  std::chrono::milliseconds retry_delay{500};  // doubled on each retry, at most 30 s
  std::map<std::string, std::string> host_tokens;  // host -> bearer token
  // Free bytes on the file system holding `dir`; nullopt when unknown. Default: statvfs.
  std::function<std::optional<uint64_t>(const std::filesystem::path& dir)> free_space;
  uint64_t free_space_reserve = 0;    // bytes that must stay free after the download
  std::filesystem::path queue_file;   // the persisted queue; empty: not persisted
  long low_speed_timeout_s = 60;      // a connection moving under 1 byte/s this long is retried
  int max_redirects = 10;

  // HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) -> huggingface.co, CIVITAI_API_TOKEN -> civitai.com.
  static std::map<std::string, std::string> tokens_from_env();
  // Defaults plus the environment: tokens_from_env(), COMFYCPP_DOWNLOAD_TOKENS="host=token,...",
  // COMFYCPP_DOWNLOAD_HOSTS="host,..." (the allow-list), COMFYCPP_ALLOW_PICKLE_DOWNLOADS=1,
  // COMFYCPP_MAX_DOWNLOADS=N; then `tokens_file` when it exists: a JSON object {"host": "token"}
  // (the server and CLI use <user directory>/__comfycpp/download_tokens.json).
  static DownloadOptions from_env(const std::filesystem::path& tokens_file = {});
};

struct DownloadRequest {
  std::string url;
  std::string directory;  // a model folder name ("checkpoints", "loras", legacy "clip"...)
  std::string filename;   // may hold a subfolder; empty: the URL's last segment or Content-Disposition
  std::string sha256;     // expected lower-case hex, or empty
  std::optional<uint64_t> size;  // expected size in bytes, when known
};

enum class DownloadStatus { queued, running, completed, failed, cancelled };
std::string to_string(DownloadStatus s);

struct DownloadState {
  std::string id;
  DownloadRequest request;
  DownloadStatus status = DownloadStatus::queued;
  std::filesystem::path target;   // the final file; empty until the server names it (Content-Disposition)
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;       // 0: unknown
  double speed = 0;               // bytes per second, recent
  int attempts = 0;
  std::string error;              // why it failed (never a token)
  std::string sha256;             // of the finished file
  bool finished() const {
    return status == DownloadStatus::completed || status == DownloadStatus::failed ||
           status == DownloadStatus::cancelled;
  }
  json to_json() const;
  // The ComfyUI frontend's asset_download WebSocket message: task_id, asset_name, bytes_total,
  // bytes_downloaded, progress (0..1), status (created|running|completed|failed), error.
  json asset_download_message() const;
};

// The file name a request will be saved under, checked: an explicit filename may hold subfolders
// ("sd15/x.safetensors"); refuses "..", backslashes, absolute paths, empty and hidden parts, and
// extensions outside the allowed set. A name taken from the URL must be a plain name. Throws
// ComfyError (ValueError).
std::string checked_download_filename(const DownloadRequest& req, bool allow_pickle);
// The URL's last path segment, percent-decoded ("" when the path ends with '/').
std::string url_file_name(const std::string& url);
// True when `name` ends with a model file extension (safe or pickle): a URL segment worth using.
bool has_model_extension(const std::string& name);
// The file name a Content-Disposition header gives (filename* in UTF-8 preferred over filename),
// reduced to its last path part; "" when it gives none or only "."/"..".
std::string content_disposition_filename(const std::string& header);
// The lower-cased host of an http(s) URL; throws ComfyError (ValueError) for other schemes.
std::string url_host(const std::string& url);
// A Hugging Face page URL (".../blob/main/x.safetensors") as the file's URL (".../resolve/...");
// other URLs unchanged.
std::string raw_file_url(const std::string& url);
// True when `host` is `pattern` or a subdomain of it.
bool host_matches(const std::string& host, const std::string& pattern);

class DownloadManager {
 public:
  using Listener = std::function<void(const DownloadState&)>;

  // Reads the persisted queue (downloads that were queued or running start again, resuming their
  // .part files) and starts the workers.
  DownloadManager(const FolderPaths& folders, DownloadOptions options);
  // Stops the workers; running downloads stop where they are, keep their .part file and stay
  // queued in the persisted queue for the next start.
  ~DownloadManager();
  DownloadManager(const DownloadManager&) = delete;
  DownloadManager& operator=(const DownloadManager&) = delete;

  // Validates (scheme, host allow-list, folder, filename, extension, known size vs free space)
  // and queues; returns the id. Throws ComfyError (ValueError / OSError) with a clear message.
  std::string enqueue(const DownloadRequest& req);
  std::optional<DownloadState> get(const std::string& id) const;
  std::vector<DownloadState> list() const;
  // Queued: dropped. Running: stopped, its .part removed. False for unknown or finished ids.
  bool cancel(const std::string& id);
  // Blocks until the download is finished (completed, failed or cancelled).
  DownloadState wait(const std::string& id);
  // Called on every status change and at most ~4 times a second with progress; from the worker
  // threads. Set it before enqueueing.
  void set_listener(Listener listener);

 private:
  struct Job;
  void worker_loop();
  void run_job(const std::shared_ptr<Job>& job);
  void notify(const std::shared_ptr<Job>& job, bool force);
  void persist_locked() const;
  void load_queue();
  std::filesystem::path target_dir(const std::string& folder) const;

  const FolderPaths& folders_;
  DownloadOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;       // work queued / stopping
  std::condition_variable done_cv_;  // a job finished
  std::vector<std::shared_ptr<Job>> jobs_;  // in enqueue order
  std::deque<std::shared_ptr<Job>> pending_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  Listener listener_;
  uint64_t next_id_ = 1;
};

}  // namespace comfy
