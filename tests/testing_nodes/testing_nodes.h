// A test-only node pack (like ComfyUI's tests/execution/testing_nodes): small nodes whose
// behaviour the engine tests can observe. Values are plain JSON numbers so no torch is needed.
#pragma once
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "graph/registry.h"

namespace comfy::testing {

// How often each test node's function ran, by class_type (reset between tests).
struct CallCounter {
  std::mutex mutex;
  std::map<std::string, int> calls;
  void hit(const std::string& name) {
    std::lock_guard lock(mutex);
    ++calls[name];
  }
  int get(const std::string& name) {
    std::lock_guard lock(mutex);
    return calls[name];
  }
  void reset() {
    std::lock_guard lock(mutex);
    calls.clear();
  }
};
CallCounter& counter();

void register_testing_nodes(Registry& r);

}  // namespace comfy::testing
