// Where the prompt queue and the history live between runs. PromptQueue writes through to a
// QueueStore on every change, so a restart (or a killed process) loses nothing: pending prompts
// come back in order, and a prompt that was running comes back pending. SQLite is the default
// backing (store/sqlite_store); MemoryQueueStore keeps nothing and serves tests and --no-persist.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"

namespace comfy {

// One queued prompt: ComfyUI's queue tuple (number, prompt_id, prompt, extra_data, outputs).
// ComfyUI's sixth element, the sensitive extra data, is never persisted.
struct QueueItem {
  double number = 0;  // ComfyUI allows front (negative) and fractional numbers
  std::string prompt_id;
  json prompt = json::object();
  json extra_data = json::object();
  std::vector<std::string> outputs;
  json sensitive = json::object();

  json to_json() const;  // the 5-element array of /queue and history "prompt"
};

class QueueStore {
 public:
  virtual ~QueueStore() = default;

  virtual void add_pending(const QueueItem& item) = 0;
  virtual void remove_pending(const std::string& prompt_id) = 0;
  virtual void clear_pending() = 0;
  // The item is now running; it stays stored so a restart queues it again.
  virtual void mark_running(const std::string& prompt_id) = 0;
  // The item finished: it leaves the queue and its history entry is stored, in one transaction.
  virtual void finish(const std::string& prompt_id, const json& history_entry) = 0;
  virtual void delete_history(const std::string& prompt_id) = 0;
  virtual void clear_history() = 0;

  // Everything queued (running items first, then pending, each by number then insertion).
  virtual std::vector<QueueItem> load_queue() = 0;
  // History entries, oldest first.
  virtual std::vector<std::pair<std::string, json>> load_history() = 0;
};

class MemoryQueueStore final : public QueueStore {
 public:
  void add_pending(const QueueItem&) override {}
  void remove_pending(const std::string&) override {}
  void clear_pending() override {}
  void mark_running(const std::string&) override {}
  void finish(const std::string&, const json&) override {}
  void delete_history(const std::string&) override {}
  void clear_history() override {}
  std::vector<QueueItem> load_queue() override { return {}; }
  std::vector<std::pair<std::string, json>> load_history() override { return {}; }
};

}  // namespace comfy
