// The engine under test: a registry of test-only nodes, an executor whose events are recorded,
// and a one-call `run` that validates and executes a prompt as the queue worker would.
#pragma once
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "graph/executor.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "graph/validation.h"
#include "testing_nodes/testing_nodes.h"

namespace comfy::testing {

class RecordingSink : public EventSink {
 public:
  void send(const std::string& type, const json& data, const std::string& sid) override {
    std::lock_guard lock(mutex_);
    events_.push_back({type, data, sid});
  }
  struct Event {
    std::string type;
    json data;
    std::string sid;
  };
  std::vector<Event> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<Event> of_type(const std::string& type) {
    std::vector<Event> out;
    for (auto& e : events())
      if (e.type == type) out.push_back(e);
    return out;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    events_.clear();
  }

 private:
  std::mutex mutex_;
  std::vector<Event> events_;
};

struct Engine {
  Registry registry;
  Services services;
  RecordingSink sink;
  Executor executor;

  explicit Engine(CachePolicy policy = CachePolicy::classic, size_t lru = 0)
      : executor((register_testing_nodes(registry), registry), services, &sink, policy, lru) {
    counter().reset();
  }

  ValidationResult validate(json& prompt) { return validate_prompt(registry, services, prompt); }

  ExecutionResult run(json prompt, json extra = json{{"client_id", "client"}}) {
    ValidationResult v = validate(prompt);
    if (!v.ok) throw std::runtime_error("validation failed: " + v.error_body().dump());
    sink.clear();
    return executor.execute(prompt, "prompt", extra, v.outputs);
  }

  std::vector<std::string> executing_order() {
    std::vector<std::string> out;
    for (auto& e : sink.of_type("executing"))
      if (e.data["node"].is_string()) out.push_back(e.data["node"].get<std::string>());
    return out;
  }
};

inline json node(const std::string& class_type, json inputs) {
  return json{{"class_type", class_type}, {"inputs", std::move(inputs)}};
}
inline json link(const std::string& id, int slot = 0) { return json::array({id, slot}); }

}  // namespace comfy::testing
