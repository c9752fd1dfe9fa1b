// What every route handler works with: the long-lived objects the Server owns, by reference.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "graph/executor.h"
#include "graph/prompt_queue.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "models/folder_paths.h"
#include "server/http.h"
#include "server/server.h"
#include "server/ws.h"

namespace comfy::server {

// The last captured log lines (/internal/logs), fed by a spdlog sink.
class LogBuffer {
 public:
  static constexpr size_t kMaxEntries = 300;
  void add(std::string time, std::string message);
  json entries() const;  // [{"t", "m"}, ...]
  std::string text() const;

 private:
  mutable std::mutex mutex_;
  std::deque<std::pair<std::string, std::string>> entries_;
};

// Holds back the start of a prompt until the POST /prompt answer that queued it has been written,
// and a little longer. Clients such as @stable-canvas/comfyui-client listen for a prompt's events
// only once they have read and parsed that answer; ComfyUI's single event loop and its worker's
// wake-up leave that time, and a cached prompt that ran at once would otherwise finish before the
// client listens (it then waits for its `executed` until it times out).
class ResponseGate {
 public:
  static constexpr std::chrono::milliseconds kGrace{30};
  void hold(const std::string& prompt_id);
  void release(const std::string& prompt_id);  // the answer is written (or could not be)
  // Returns kGrace after `prompt_id` was released, at once when it is not held, or after `limit`
  // (a lost answer never blocks a prompt).
  void wait(const std::string& prompt_id, std::chrono::milliseconds limit);

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  // prompt_id -> when its answer was written (nullopt: not yet)
  std::map<std::string, std::optional<std::chrono::steady_clock::time_point>> held_;
};

// The server's model downloads (handlers/model_downloads.cpp): made on first use, dropped by
// Server::stop before the WebSocket hub its progress goes to.
struct ModelDownloads;

struct Context {
  const ServerOptions& options;
  const Registry& registry;
  Services& services;
  FolderPaths& folders;
  PromptQueue& queue;
  Executor& executor;
  WsHub& hub;
  LogBuffer& logs;
  ResponseGate& response_gate;       // POST /prompt answers not yet written
  std::recursive_mutex users_mutex;  // users.json and settings files
  std::mutex model_downloads_mutex;
  std::shared_ptr<ModelDownloads> model_downloads;

  json queue_info() const;  // {"exec_info": {"queue_remaining": N}}
  json features() const;    // /features
};

// An early answer from deep inside a handler (a 4xx with ComfyUI's body).
struct HttpError {
  Response response;
};

}  // namespace comfy::server
