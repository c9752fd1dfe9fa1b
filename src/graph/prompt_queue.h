// ComfyUI's PromptQueue (spec 4.1, 1.4 /queue and /history): a priority queue of prompts
// (smallest number first; `front` prompts get negative numbers), the prompts running now, the
// history of finished ones, and the /free flags. Every change is written through to a QueueStore,
// so a restart resumes where the last process stopped; a prompt that was running is queued again.
#pragma once
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "graph/events.h"
#include "graph/executor.h"
#include "graph/queue_store.h"

namespace comfy {

class PromptQueue {
 public:
  static constexpr size_t kMaximumHistorySize = 10000;

  PromptQueue(QueueStore& store, EventSink* sink);

  // ComfyUI's server counter: the next number, negated for `front`.
  double next_number(bool front);
  void put(QueueItem item);
  // Waits up to `timeout` for the next prompt and marks it running; returns (task id, item).
  std::optional<std::pair<int, QueueItem>> get(std::chrono::milliseconds timeout);
  // The running prompt `task_id` finished: it becomes a history entry.
  void task_done(int task_id, const ExecutionResult& result);

  size_t tasks_remaining() const;
  json queue_json() const;  // {"queue_running": [...], "queue_pending": [...]}
  std::vector<QueueItem> pending() const;
  bool is_running(const std::string& prompt_id) const;
  void wipe_queue();
  bool delete_queue_item(const std::string& prompt_id);

  // /history semantics: the last `max_items` when no offset is given.
  json get_history(const std::optional<std::string>& prompt_id = {}, std::optional<int64_t> max_items = {},
                   int64_t offset = -1) const;
  void wipe_history();
  void delete_history_item(const std::string& prompt_id);

  void set_flag(const std::string& name, const json& value);
  json get_flags(bool reset = true);

 private:
  void queue_updated();  // broadcasts status (call without the lock held)
  QueueStore& store_;
  EventSink* sink_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::vector<QueueItem> heap_;  // binary min-heap by (number, prompt_id)
  std::map<int, QueueItem> running_;
  int task_counter_ = 0;
  double number_counter_ = 0;
  std::vector<std::pair<std::string, json>> history_;  // oldest first
  json flags_ = json::object();
};

// The worker thread's loop body, shared by the server and tests: take one prompt, run it,
// record it, and honour the /free flags. Returns false when nothing was queued before `timeout`.
bool process_next_prompt(PromptQueue& queue, Executor& executor, EventSink* sink,
                         std::chrono::milliseconds timeout);

}  // namespace comfy
