// The background model-hash routes (model_hash.h). The jobs live in a ModelHashes object owned by
// the Context (made on first use; Server::stop drops it, which stops and joins the worker before
// the WebSocket hub goes away).
#include "server/handlers/model_hash.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "io/sha256.h"
#include "server/handlers/handlers.h"
#include "store/hash_cache.h"

namespace comfy::server {

namespace fs = std::filesystem;

struct ModelHashes {
  struct Job {
    std::string id, folder, filename;
    fs::path path;
    std::string status = "queued";
    uint64_t bytes = 0, total = 0;
    std::string sha256, error;
    bool cached = false;
    json to_json() const {
      json j = {{"id", id},       {"folder", folder},
                {"filename", filename}, {"status", status},
                {"progress", {{"bytes", bytes}, {"total", total}}},
                {"sha256", sha256.empty() ? json(nullptr) : json(sha256)},
                {"autov2", sha256.empty() ? json(nullptr) : json(sha256.substr(0, 10))},
                {"cached", cached}};
      if (!error.empty()) j["error"] = error;
      return j;
    }
  };

  WsHub* hub = nullptr;
  std::shared_ptr<HashCache> cache;
  std::mutex mu;
  std::condition_variable wake;
  std::deque<std::string> pending;
  std::map<std::string, Job> jobs;
  std::deque<std::string> finished;  // ids of done/error jobs, oldest first
  std::atomic<bool> stopping{false};
  std::thread worker;

  ~ModelHashes() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake.notify_all();
    if (worker.joinable()) worker.join();
  }

  void publish(const std::string& id) {
    json msg;
    {
      std::lock_guard lock(mu);
      msg = jobs.at(id).to_json();
    }
    hub->send("model_hash", msg, "");
  }

  void run() {
    while (true) {
      std::string id;
      fs::path path;
      {
        std::unique_lock lock(mu);
        wake.wait(lock, [&] { return stopping || !pending.empty(); });
        if (stopping) return;
        id = pending.front();
        pending.pop_front();
        Job& j = jobs.at(id);
        j.status = "running";
        path = j.path;
      }
      publish(id);
      hash_one(id, path);
      publish(id);
    }
  }

  void hash_one(const std::string& id, const fs::path& path) {
    uint64_t last_sent = 0;
    auto progress = [&](uint64_t done, uint64_t total) {
      if (stopping) return false;
      bool send = false;
      {
        std::lock_guard lock(mu);
        Job& j = jobs.at(id);
        j.bytes = done;
        j.total = total;
        send = done < total && (total == 0 || (done - last_sent) * 100 >= total);
      }
      if (send) {
        last_sent = done;
        publish(id);
      }
      return true;
    };
    auto compute = [&](const fs::path& p) { return io::sha256_file_hex(p, progress); };
    std::string digest, error;
    bool cached = false;
    try {
      if (cache) {
        try {
          digest = cache->digest(path, "sha256", compute, &cached);
        } catch (const ComfyError&) {
          throw;
        } catch (const std::exception& e) {  // the cache database failed: hash without it
          spdlog::warn("model hash cache: {}", e.what());
          digest = compute(path);
        }
      } else {
        digest = compute(path);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard lock(mu);
    Job& j = jobs.at(id);
    j.cached = cached;
    if (error.empty()) {
      j.status = "done";
      j.sha256 = digest;
      std::error_code ec;
      j.total = fs::file_size(path, ec);
      j.bytes = j.total;
    } else {
      j.status = "error";
      j.error = error;
    }
    finished.push_back(id);
  }
};

namespace {

ModelHashes& hashes(Context& ctx) {
  std::lock_guard lock(ctx.model_hashes_mutex);
  if (!ctx.model_hashes) {
    auto h = std::make_shared<ModelHashes>();
    h->hub = &ctx.hub;
    try {
      h->cache = std::make_shared<HashCache>(ctx.folders.user_directory() / "__comfycpp" / "model_hashes.sqlite");
    } catch (const std::exception& e) {
      spdlog::warn("model hash cache unavailable: {}", e.what());
    }
    h->worker = std::thread([raw = h.get()] { raw->run(); });
    ctx.model_hashes = std::move(h);
  }
  return *ctx.model_hashes;
}

constexpr std::size_t kMaxJobs = 1000;  // jobs kept for GET /models/hash/{id}

Response error(int status, const std::string& message) { return Response::json_body(json{{"error", message}}, status); }

Response post_models_hash(Context& ctx, Request& req) {
  json body;
  try {
    body = body_json(req);
  } catch (const std::exception&) {
    return error(400, "the body must be JSON");
  }
  if (!body.is_object()) return error(400, "the body must be a JSON object");
  std::string folder, filename;
  if (body.contains("path") && body["path"].is_string()) {
    const std::string p = body["path"];
    const auto slash = p.find('/');
    if (slash == std::string::npos) return error(400, "'path' must be FOLDER/NAME, as loaders name a model");
    folder = p.substr(0, slash);
    filename = p.substr(slash + 1);
  } else if (body.value("folder", json()).is_string() && body.value("filename", json()).is_string()) {
    folder = body["folder"];
    filename = body["filename"];
  } else {
    return error(400, "give {\"folder\", \"filename\"} or {\"path\": \"FOLDER/NAME\"}");
  }
  folder = FolderPaths::map_legacy(folder);
  if (!ctx.folders.has_folder(folder)) return error(404, "unknown model folder '" + folder + "'");
  // A relative name without "..": a file under one of the folder's directories (a symlinked
  // model file is followed, as loaders follow it).
  const fs::path rel(filename);
  bool safe = !filename.empty() && !rel.is_absolute() && filename.find('\0') == std::string::npos &&
              filename.find('\\') == std::string::npos;
  for (const auto& part : rel) safe = safe && part != "..";
  if (!safe) return error(404, "no file '" + filename + "' in model folder '" + folder + "'");
  std::optional<fs::path> file;
  for (const fs::path& dir : ctx.folders.get_folder_paths(folder)) {
    const fs::path p = (dir / rel).lexically_normal();
    std::error_code ec;
    if (is_within(dir, p) && fs::is_regular_file(p, ec)) {
      file = p;
      break;
    }
  }
  if (!file) return error(404, "no file '" + filename + "' in model folder '" + folder + "'");
  ModelHashes& h = hashes(ctx);
  json answer;
  {
    std::lock_guard lock(h.mu);
    for (const auto& [id, job] : h.jobs) {
      if (job.path == *file && (job.status == "queued" || job.status == "running")) return Response::json_body(job.to_json());
    }
    if (h.jobs.size() >= kMaxJobs) {  // forget the oldest finished jobs
      for (auto it = h.finished.begin(); it != h.finished.end() && h.jobs.size() >= kMaxJobs;) {
        h.jobs.erase(*it);
        it = h.finished.erase(it);
      }
    }
    ModelHashes::Job job;
    job.id = new_uuid4();
    job.folder = folder;
    job.filename = filename;
    job.path = *file;
    std::error_code ec;
    job.total = fs::file_size(*file, ec);
    answer = job.to_json();
    h.pending.push_back(job.id);
    h.jobs.emplace(job.id, std::move(job));
  }
  h.wake.notify_one();
  return Response::json_body(answer);
}

Response get_models_hash(Context& ctx, Request& req) {
  ModelHashes& h = hashes(ctx);
  std::lock_guard lock(h.mu);
  auto it = h.jobs.find(req.param("id"));
  if (it == h.jobs.end()) return error(404, "no hash job with id '" + req.param("id") + "'");
  return Response::json_body(it->second.to_json());
}

}  // namespace

std::vector<HandlerRoute> model_hash_routes(Context&) {
  return {{"POST", "/models/hash", post_models_hash}, {"GET", "/models/hash/{id}", get_models_hash}};
}

}  // namespace comfy::server
