// What every route handler works with: the long-lived objects the Server owns, by reference.
#pragma once
#include <deque>
#include <mutex>
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

struct Context {
  const ServerOptions& options;
  const Registry& registry;
  Services& services;
  FolderPaths& folders;
  PromptQueue& queue;
  Executor& executor;
  WsHub& hub;
  LogBuffer& logs;
  std::recursive_mutex users_mutex;  // users.json and settings files

  json queue_info() const;  // {"exec_info": {"queue_remaining": N}}
  json features() const;    // /features
};

// An early answer from deep inside a handler (a 4xx with ComfyUI's body).
struct HttpError {
  Response response;
};

}  // namespace comfy::server
