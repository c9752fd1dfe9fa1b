#include "server/server.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <thread>

#include "graph/executor.h"
#include "graph/prompt_queue.h"
#include "models/folder_paths.h"
#include "server/context.h"
#include "server/http.h"
#include "server/routes.h"
#include "server/ws.h"
#include "store/sqlite_store.h"

namespace comfy::server {

namespace fs = std::filesystem;

// ---- Context and LogBuffer ------------------------------------------------------------------

json Context::queue_info() const {
  return json{{"exec_info", {{"queue_remaining", queue.tasks_remaining()}}}};
}

json Context::features() const {
  return json{{"supports_preview_metadata", true},
              {"max_upload_size", options.max_upload_size_given
                                      ? json(options.max_upload_size_mb * 1024.0 * 1024.0)
                                      : json(std::llround(options.max_upload_size_mb * 1024.0 * 1024.0))},
              {"extension", {{"manager", {{"supports_v4", true}}}}}};
}

void ResponseGate::hold(const std::string& prompt_id) {
  std::lock_guard lock(mutex_);
  // Prompts deleted from the queue never start: forget answers written long ago.
  auto old = std::chrono::steady_clock::now() - std::chrono::minutes(1);
  std::erase_if(held_, [&](const auto& entry) { return entry.second && *entry.second < old; });
  held_[prompt_id] = std::nullopt;
}

void ResponseGate::release(const std::string& prompt_id, bool read) {
  {
    std::lock_guard lock(mutex_);
    auto start = std::chrono::steady_clock::now();
    if (!read) start += kGrace;
    if (auto it = held_.find(prompt_id); it != held_.end()) it->second = start;
  }
  released_.notify_all();
}

void ResponseGate::wait(const std::string& prompt_id, std::chrono::milliseconds limit) {
  std::optional<std::chrono::steady_clock::time_point> start;
  {
    std::unique_lock lock(mutex_);
    auto held = [&] {
      auto it = held_.find(prompt_id);
      return it != held_.end() && !it->second;
    };
    released_.wait_for(lock, limit, [&] { return !held(); });
    if (auto it = held_.find(prompt_id); it != held_.end()) {
      start = it->second;
      held_.erase(it);
    }
  }
  if (start) std::this_thread::sleep_until(*start);
}

void LogBuffer::add(std::string time, std::string message) {
  std::lock_guard lock(mutex_);
  entries_.emplace_back(std::move(time), std::move(message));
  while (entries_.size() > kMaxEntries) entries_.pop_front();
}

json LogBuffer::entries() const {
  std::lock_guard lock(mutex_);
  json out = json::array();
  for (auto& [t, m] : entries_) out.push_back(json{{"t", t}, {"m", m}});
  return out;
}

std::string LogBuffer::text() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (auto& [t, m] : entries_) out += t + " - " + m;
  return out;
}

namespace {

// Every log line also goes to the /internal/logs buffer, stamped as ComfyUI stamps them.
class LogBufferSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LogBufferSink(LogBuffer& buffer) : buffer_(buffer) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto t = msg.time;
    auto secs = std::chrono::system_clock::to_time_t(t);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() % 1000000;
    std::tm tm{};
    localtime_r(&secs, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char full[80];
    std::snprintf(full, sizeof full, "%s.%06lld", buf, static_cast<long long>(micros));
    buffer_.add(full, std::string(msg.payload.data(), msg.payload.size()) + "\n");
  }
  void flush_() override {}

 private:
  LogBuffer& buffer_;
};

// The executor's events go to the hub through this: a prompt's execution_start waits for the
// POST /prompt answer that queued it (see ResponseGate).
class GatedSink : public EventSink {
 public:
  GatedSink(EventSink& inner, ResponseGate& gate) : inner_(inner), gate_(gate) {}
  void send(const std::string& type, const json& data, const std::string& sid) override {
    if (type == "execution_start" && data.contains("prompt_id") && data["prompt_id"].is_string())
      gate_.wait(data["prompt_id"].get<std::string>(), std::chrono::seconds(2));
    inner_.send(type, data, sid);
  }
  void send_preview(const std::string& image, bool png, const json& metadata, const std::string& sid) override {
    inner_.send_preview(image, png, metadata, sid);
  }

 private:
  EventSink& inner_;
  ResponseGate& gate_;
};

}  // namespace

// ---- Server -----------------------------------------------------------------------------------

struct Server::Impl {
  ServerOptions options;
  const Registry& registry;
  Services& services;
  FolderPaths& folders;
  LogBuffer logs;
  ResponseGate response_gate;
  std::shared_ptr<LogBufferSink> log_sink;
  std::unique_ptr<QueueStore> store;
  std::unique_ptr<WsHub> hub;
  std::unique_ptr<PromptQueue> queue;
  std::unique_ptr<GatedSink> executor_sink;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Router> router;
  std::unique_ptr<HttpServer> http;
  std::thread worker;
  std::atomic<bool> stopping{false};
  uint16_t port = 0;
  bool started = false;

  Impl(ServerOptions o, const Registry& r, Services& s, FolderPaths& f)
      : options(std::move(o)), registry(r), services(s), folders(f) {}
};

Server::Server(ServerOptions options, const Registry& registry, Services& services, FolderPaths& folders)
    : impl_(std::make_unique<Impl>(std::move(options), registry, services, folders)) {}

Server::~Server() { stop(); }

uint16_t Server::port() const { return impl_->port; }

WsHub& Server::hub() { return *impl_->hub; }

uint16_t Server::start() {
  Impl& s = *impl_;
  if (s.started) return s.port;
  s.log_sink = std::make_shared<LogBufferSink>(s.logs);
  spdlog::default_logger()->sinks().push_back(s.log_sink);

  if (s.options.persist) {
    // A "__" user is never reachable over HTTP, so the database cannot be read through /userdata.
    s.store = std::make_unique<SqliteQueueStore>(s.folders.user_directory() / "__comfycpp" / "queue.sqlite");
  } else {
    s.store = std::make_unique<MemoryQueueStore>();
  }
  // The hub asks the queue for its size; the queue is built after the hub, so go through Impl.
  s.hub = std::make_unique<WsHub>([&s] { return s.ctx->queue_info(); }, [&s] { return s.ctx->features(); });
  s.queue = std::make_unique<PromptQueue>(*s.store, s.hub.get());
  s.executor_sink = std::make_unique<GatedSink>(*s.hub, s.response_gate);
  s.executor = std::make_unique<Executor>(s.registry, s.services, s.executor_sink.get());
  s.ctx.reset(new Context{s.options, s.registry, s.services, s.folders, *s.queue, *s.executor, *s.hub, s.logs,
                          s.response_gate, {}});
  s.router = std::make_unique<Router>(*s.ctx);
  uint64_t limit = static_cast<uint64_t>(std::llround(s.options.max_upload_size_mb * 1024 * 1024));
  s.http = std::make_unique<HttpServer>([&s](Request& req) { return s.router->handle(req); }, *s.hub, limit,
                                        s.options.io_threads);
  // Before the worker starts: a certificate or key that cannot be used fails start() cleanly.
  if (!s.options.tls_certfile.empty() || !s.options.tls_keyfile.empty())
    s.http->use_tls(s.options.tls_certfile, s.options.tls_keyfile);

  if (s.options.run_worker) {
    s.worker = std::thread([&s] {
      while (!s.stopping) {
        try {
          process_next_prompt(*s.queue, *s.executor, s.hub.get(), std::chrono::milliseconds(200));
        } catch (const std::exception& e) {
          spdlog::error("worker: {}", e.what());
        }
      }
    });
  }
  s.port = s.http->listen(s.options.listen, s.options.port);
  s.started = true;
  if (!s.options.dont_print_server) {
    for (auto& addr : s.options.listen) {
      // As ComfyUI prints it: the address as given, IPv6 in brackets ("0.0.0.0", "[::]").
      std::string shown = addr.find(':') != std::string::npos ? "[" + addr + "]" : addr;
      spdlog::info("Starting server\n\nTo see the GUI go to: {}://{}:{}", s.http->tls() ? "https" : "http", shown,
                   s.port);
    }
  }
  return s.port;
}

void Server::stop() {
  Impl& s = *impl_;
  if (!s.started && !s.worker.joinable()) return;
  s.stopping = true;
  if (s.executor) s.executor->interrupt();
  if (s.worker.joinable()) s.worker.join();
  if (s.http) s.http->stop();
  if (s.ctx) {  // running downloads stop before the hub their progress goes to
    std::lock_guard lock(s.ctx->model_downloads_mutex);
    s.ctx->model_downloads.reset();
  }
  if (s.ctx) {  // and background hashes (handlers/model_hash.cpp)
    std::lock_guard lock(s.ctx->model_hashes_mutex);
    s.ctx->model_hashes.reset();
  }
  if (s.log_sink) {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), s.log_sink), sinks.end());
    s.log_sink.reset();
  }
  s.started = false;
}

}  // namespace comfy::server
