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

// Holds back the start of a prompt until the client has the POST /prompt answer that queued it.
// Clients such as @stable-canvas/comfyui-client listen for a prompt's events only once they have
// read and parsed that answer; a cached prompt that ran at once would otherwise finish before the
// client listens (it then waits for its `executed` until it times out). For a client on this
// machine the transport reports when the client program has read the answer's bytes
// (Response::wait_for_ack), and the prompt starts then: in 900 cached re-runs of that client on a
// loaded 2-core machine none was missed (starting at the TCP acknowledgement instead, 10 in 400
// were, and 4 in 300 with 10 ms more). Where the reads cannot be seen (a client on another
// machine, no socket information) it starts kGrace after the answer was written or acknowledged.
class ResponseGate {
 public:
  static constexpr std::chrono::milliseconds kGrace{30};
  void hold(const std::string& prompt_id);
  // The client has read the answer (`read`), or it is written (or could not be) and nothing more
  // is known.
  void release(const std::string& prompt_id, bool read);
  // Returns when `prompt_id` may start: once released (plus kGrace when not `read`), at once when
  // it is not held, or after `limit` (a lost answer never blocks a prompt).
  void wait(const std::string& prompt_id, std::chrono::milliseconds limit);

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  // prompt_id -> when the prompt may start (nullopt: its answer is not written yet)
  std::map<std::string, std::optional<std::chrono::steady_clock::time_point>> held_;
};

// The server's model downloads (handlers/model_downloads.cpp): made on first use, dropped by
// Server::stop before the WebSocket hub its progress goes to.
struct ModelDownloads;
// Background model hashing (handlers/model_hash.cpp): the same lifetime.
struct ModelHashes;

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
  std::mutex model_hashes_mutex;
  std::shared_ptr<ModelHashes> model_hashes;

  json queue_info() const;  // {"exec_info": {"queue_remaining": N}}
  json features() const;    // /features
};

// An early answer from deep inside a handler (a 4xx with ComfyUI's body).
struct HttpError {
  Response response;
};

}  // namespace comfy::server
