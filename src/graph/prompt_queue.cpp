#include "graph/prompt_queue.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

namespace comfy {
namespace {

// std heap functions build a max-heap; this order puts the smallest (number, prompt_id) on top.
bool heap_after(const QueueItem& a, const QueueItem& b) {
  if (a.number != b.number) return a.number > b.number;
  return a.prompt_id > b.prompt_id;
}

}  // namespace

PromptQueue::PromptQueue(QueueStore& store, EventSink* sink) : store_(store), sink_(sink) {
  for (auto& item : store_.load_queue()) {
    number_counter_ = std::max(number_counter_, std::floor(std::abs(item.number)) + 1);
    heap_.push_back(std::move(item));
    std::push_heap(heap_.begin(), heap_.end(), heap_after);
  }
  history_ = store_.load_history();
  for (auto& [id, entry] : history_) {
    if (entry.contains("prompt") && entry["prompt"].is_array() && !entry["prompt"].empty() &&
        entry["prompt"][0].is_number())
      number_counter_ = std::max(number_counter_, std::floor(std::abs(entry["prompt"][0].get<double>())) + 1);
  }
  if (!heap_.empty()) spdlog::info("Restored {} queued prompt(s) from the last run", heap_.size());
}

double PromptQueue::next_number(bool front) {
  std::lock_guard lock(mutex_);
  double n = number_counter_;
  number_counter_ += 1;
  return front ? -n : n;
}

void PromptQueue::put(QueueItem item) {
  {
    std::lock_guard lock(mutex_);
    store_.add_pending(item);
    heap_.push_back(std::move(item));
    std::push_heap(heap_.begin(), heap_.end(), heap_after);
  }
  queue_updated();
  not_empty_.notify_all();
}

std::optional<std::pair<int, QueueItem>> PromptQueue::get(std::chrono::milliseconds timeout) {
  std::pair<int, QueueItem> out;
  {
    std::unique_lock lock(mutex_);
    // /free flags wake the worker too (it consumes them after each wait).
    not_empty_.wait_for(lock, timeout, [&] { return !heap_.empty() || !flags_.empty(); });
    if (heap_.empty()) return std::nullopt;
    std::pop_heap(heap_.begin(), heap_.end(), heap_after);
    QueueItem item = std::move(heap_.back());
    heap_.pop_back();
    store_.mark_running(item.prompt_id);
    int id = task_counter_++;
    running_[id] = item;
    out = {id, std::move(item)};
  }
  queue_updated();
  return out;
}

void PromptQueue::task_done(int task_id, const ExecutionResult& result) {
  {
    std::lock_guard lock(mutex_);
    auto it = running_.find(task_id);
    if (it == running_.end()) return;
    QueueItem item = std::move(it->second);
    running_.erase(it);
    // History shows the prompt as it ran (ComfyUI's executor writes is_changed into it).
    if (result.prompt.is_object()) item.prompt = result.prompt;
    if (history_.size() > kMaximumHistorySize) {
      store_.delete_history(history_.front().first);
      history_.erase(history_.begin());
    }
    json entry{{"prompt", item.to_json()},
               {"outputs", result.outputs},
               {"status", {{"status_str", result.success ? "success" : "error"},
                           {"completed", result.success},
                           {"messages", result.messages}}},
               {"meta", result.meta}};
    store_.finish(item.prompt_id, entry);
    history_.erase(std::remove_if(history_.begin(), history_.end(),
                                  [&](auto& h) { return h.first == item.prompt_id; }),
                   history_.end());
    history_.emplace_back(item.prompt_id, std::move(entry));
  }
  queue_updated();
}

size_t PromptQueue::tasks_remaining() const {
  std::lock_guard lock(mutex_);
  return heap_.size() + running_.size();
}

json PromptQueue::queue_json() const {
  std::lock_guard lock(mutex_);
  json running = json::array(), pending = json::array();
  for (auto& [id, item] : running_) running.push_back(item.to_json());
  for (auto& item : heap_) pending.push_back(item.to_json());
  return json{{"queue_running", running}, {"queue_pending", pending}};
}

std::vector<QueueItem> PromptQueue::pending() const {
  std::lock_guard lock(mutex_);
  return heap_;
}

bool PromptQueue::is_running(const std::string& prompt_id) const {
  std::lock_guard lock(mutex_);
  return std::any_of(running_.begin(), running_.end(), [&](auto& r) { return r.second.prompt_id == prompt_id; });
}

void PromptQueue::wipe_queue() {
  {
    std::lock_guard lock(mutex_);
    heap_.clear();
    store_.clear_pending();
  }
  queue_updated();
}

bool PromptQueue::delete_queue_item(const std::string& prompt_id) {
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(heap_.begin(), heap_.end(), [&](auto& i) { return i.prompt_id == prompt_id; });
    if (it == heap_.end()) return false;
    heap_.erase(it);
    std::make_heap(heap_.begin(), heap_.end(), heap_after);
    store_.remove_pending(prompt_id);
  }
  queue_updated();
  return true;
}

json PromptQueue::get_history(const std::optional<std::string>& prompt_id, std::optional<int64_t> max_items,
                              int64_t offset) const {
  std::lock_guard lock(mutex_);
  json out = json::object();
  if (prompt_id) {
    for (auto& [id, entry] : history_)
      if (id == *prompt_id) out[id] = entry;
    return out;
  }
  if (offset < 0 && max_items) offset = static_cast<int64_t>(history_.size()) - *max_items;
  int64_t i = 0;
  for (auto& [id, entry] : history_) {
    if (i >= offset) {
      out[id] = entry;
      if (max_items && static_cast<int64_t>(out.size()) >= *max_items) break;
    }
    ++i;
  }
  return out;
}

void PromptQueue::wipe_history() {
  std::lock_guard lock(mutex_);
  history_.clear();
  store_.clear_history();
}

void PromptQueue::delete_history_item(const std::string& prompt_id) {
  std::lock_guard lock(mutex_);
  history_.erase(std::remove_if(history_.begin(), history_.end(), [&](auto& h) { return h.first == prompt_id; }),
                 history_.end());
  store_.delete_history(prompt_id);
}

void PromptQueue::set_flag(const std::string& name, const json& value) {
  {
    std::lock_guard lock(mutex_);
    flags_[name] = value;
  }
  not_empty_.notify_all();
}

json PromptQueue::get_flags(bool reset) {
  std::lock_guard lock(mutex_);
  json out = flags_;
  if (reset) flags_ = json::object();
  return out;
}

void PromptQueue::queue_updated() {
  if (!sink_) return;
  json data{{"status", {{"exec_info", {{"queue_remaining", tasks_remaining()}}}}}};
  sink_->send("status", data, "");
}

bool process_next_prompt(PromptQueue& queue, Executor& executor, EventSink* sink, std::chrono::milliseconds timeout) {
  auto next = queue.get(timeout);
  if (next) {
    auto& [task_id, item] = *next;
    json extra_data = item.extra_data;
    for (auto& [k, v] : item.sensitive.items()) extra_data[k] = v;
    auto start = std::chrono::steady_clock::now();
    ExecutionResult result = executor.execute(item.prompt, item.prompt_id, extra_data, item.outputs);
    queue.task_done(task_id, result);
    if (sink && extra_data.contains("client_id") && extra_data["client_id"].is_string())
      sink->send("executing", json{{"node", nullptr}, {"prompt_id", item.prompt_id}},
                 extra_data["client_id"].get<std::string>());
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spdlog::info("Prompt executed in {:.2f} seconds", seconds);
  }
  json flags = queue.get_flags();
  bool free_memory = flags.value("free_memory", false);
  if (free_memory) executor.reset();
  return next.has_value();
}

}  // namespace comfy
