// What a running node may ask of the executor: who it is, where to report progress, and whether
// the user has interrupted (ComfyUI checks at every progress tick; so do we).
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/json.h"
#include "graph/services.h"

namespace comfy {

class ExecutionContext {
 public:
  using ProgressFn = std::function<void(double value, double total)>;
  using PreviewFn = std::function<void(const std::string& jpeg)>;

  ExecutionContext(const Services& services, std::string prompt_id, std::string node_id,
                   const std::atomic<bool>* interrupt, ProgressFn progress,
                   std::shared_ptr<void>* node_state = nullptr)
      : services_(services), prompt_id_(std::move(prompt_id)), node_id_(std::move(node_id)),
        interrupt_(interrupt), progress_(std::move(progress)), node_state_(node_state) {}

  const Services& services() const { return services_; }
  const std::string& prompt_id() const { return prompt_id_; }
  const std::string& node_id() const { return node_id_; }

  // Throws InterruptedError when an interrupt is pending.
  void check_interrupt() const;
  // Reports progress (and checks for an interrupt first, as ComfyUI's progress hook does).
  void progress(double value, double total) const;

  // Sampler previews: the method this prompt asked for ("none", "auto", "latent2rgb", "taesd"),
  // the longest side of a preview, and where a preview picture (JPEG bytes) goes. The executor
  // sets them; a context without them previews nothing.
  void set_preview(std::string method, int size, PreviewFn fn) {
    preview_method_ = std::move(method), preview_size_ = size, preview_ = std::move(fn);
  }
  const std::string& preview_method() const { return preview_method_; }
  int preview_size() const { return preview_size_; }
  bool wants_preview() const { return preview_ && preview_method_ != "none"; }
  void preview(const std::string& jpeg) const {
    if (preview_) preview_(jpeg);
  }

  // State kept for this node id and class across prompts: ComfyUI's objects cache, where a node
  // instance lives as long as the same id keeps the same class (PreviewImage's random file
  // prefix, a loader's last file). Dropped when the id leaves the prompt or the caches are reset.
  // A context built without a store (--cache-none, direct calls) keeps state for one call only.
  template <class T>
  T& node_state() {
    std::shared_ptr<void>& slot = node_state_ ? *node_state_ : own_state_;
    if (!slot) slot = std::make_shared<T>();
    return *static_cast<T*>(slot.get());
  }

 private:
  const Services& services_;
  std::string prompt_id_, node_id_;
  const std::atomic<bool>* interrupt_;
  ProgressFn progress_;
  std::shared_ptr<void>* node_state_;
  std::shared_ptr<void> own_state_;
  std::string preview_method_ = "none";
  int preview_size_ = 512;
  PreviewFn preview_;
};

}  // namespace comfy
