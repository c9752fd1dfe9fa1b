// What a running node may ask of the executor: who it is, where to report progress, and whether
// the user has interrupted (ComfyUI checks at every progress tick; so do we).
#pragma once
#include <atomic>
#include <functional>
#include <string>

#include "core/json.h"
#include "graph/services.h"

namespace comfy {

class ExecutionContext {
 public:
  using ProgressFn = std::function<void(double value, double total)>;

  ExecutionContext(const Services& services, std::string prompt_id, std::string node_id,
                   const std::atomic<bool>* interrupt, ProgressFn progress)
      : services_(services), prompt_id_(std::move(prompt_id)), node_id_(std::move(node_id)),
        interrupt_(interrupt), progress_(std::move(progress)) {}

  const Services& services() const { return services_; }
  const std::string& prompt_id() const { return prompt_id_; }
  const std::string& node_id() const { return node_id_; }

  // Throws InterruptedError when an interrupt is pending.
  void check_interrupt() const;
  // Reports progress (and checks for an interrupt first, as ComfyUI's progress hook does).
  void progress(double value, double total) const;

 private:
  const Services& services_;
  std::string prompt_id_, node_id_;
  const std::atomic<bool>* interrupt_;
  ProgressFn progress_;
};

}  // namespace comfy
