// ComfyUI's PromptExecutor (spec 4.2-4.9): runs the validated outputs of one prompt in
// ComfyUI's order, serving nodes from the outputs cache, mapping node calls over list inputs,
// resolving lazy inputs, injecting hidden inputs, reporting progress and honouring interrupts.
// It knows no transport: everything it has to say goes to an EventSink.
#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "graph/cache.h"
#include "graph/events.h"
#include "graph/registry.h"

namespace comfy {

struct ExecutionResult {
  bool success = false;
  bool interrupted = false;
  json outputs = json::object();  // {node_id: ui dict}
  json meta = json::object();     // {node_id: {node_id, display_node, parent_node, real_node_id}}
  json messages = json::array();  // [[event, data], ...] for the history status
  json error;                     // the execution_error / execution_interrupted data, if any
  json prompt;                    // the prompt as executed (with ComfyUI's is_changed entries)
};

class Executor {
 public:
  Executor(const Registry& registry, const Services& services, EventSink* sink,
           CachePolicy policy = CachePolicy::classic, size_t lru_size = 0);

  // Runs `outputs` (validated output node ids) of `prompt`. `extra_data.client_id` selects the
  // client that receives the per-client messages.
  ExecutionResult execute(const json& prompt, const std::string& prompt_id, const json& extra_data,
                          const std::vector<std::string>& outputs);

  // Asks the running prompt to stop at the next node or progress tick (thread-safe).
  void interrupt() { interrupt_ = true; }
  // Forgets every cached output (POST /free with free_memory).
  void reset();

 private:
  class Run;
  const Registry& registry_;
  const Services& services_;
  EventSink* sink_;
  OutputCache cache_;
  // ComfyUI's objects cache: per (node id, class_type), the state a node keeps between prompts.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<void>> node_states_;
  CachePolicy policy_;
  std::atomic<bool> interrupt_{false};
};

}  // namespace comfy
