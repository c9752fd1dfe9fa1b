// CONTROL_NET: ComfyUI's comfy/controlnet.py. A loaded control network (a ControlNet in the ldm
// layout, with "control_model." or no prefix, or a T2I adapter) and the ControlBase object the
// apply nodes make from it: the hint image, strength, percent range and the previous ControlNet of
// the chain. During sampling the guider asks each batched call's chain for its residuals
// (get_control), which the UNet adds (nn/unet.h UNetControl).
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "graph/value.h"
#include "models/diffusion_model.h"
#include "models/weights.h"
#include "nn/controlnet.h"
#include "nn/t2i_adapter.h"
#include "nn/unet.h"
#include "sampling/model_sampling.h"

namespace comfy {

// A control network as load_controlnet leaves it (immutable, shared by every apply).
struct ControlNetwork {
  enum class Kind { ControlNet, T2IAdapter };
  Kind kind = Kind::ControlNet;
  std::string file;                    // the path it was loaded from (for messages)
  Weights weights;                     // a view at the network's prefix
  ControlNetConfig controlnet;         // Kind::ControlNet
  T2IAdapterConfig adapter;            // Kind::T2IAdapter
  bool global_average_pooling = false;  // "*_shuffle" files
  int64_t compression_ratio = 8;
  std::string upscale_algorithm = "nearest-exact";
};

// comfy.controlnet.load_controlnet(ckpt_path, model): an ldm ControlNet ("control_model." keys or
// none), a diffusers one (keys renamed to the ldm names; sizes from the shapes), a diff ControlNet ("difference" key: the weights are added to `model`'s UNet weights; without
// a model it warns as ComfyUI does) or a T2I adapter (full or light, diffusers keys renamed). Other
// layouts (union ControlNets, Control-LoRA, SD3/Flux/HunyuanDiT ControlNets, Stable Cascade) and
// files that hold no control model are a ComfyError naming the file.
std::shared_ptr<const ControlNetwork> load_controlnet(const std::filesystem::path& path,
                                                      const DiffusionModel* model = nullptr);

// ComfyUI's ControlNet / T2IAdapter object (ControlBase). Immutable once an apply node made it; the
// upscaled hint and the adapter's features are cached inside (as ComfyUI caches them on the object).
class ControlNet : public Object {
 public:
  explicit ControlNet(std::shared_ptr<const ControlNetwork> network) : network_(std::move(network)) {}
  std::string repr() const override;

  const ControlNetwork& network() const { return *network_; }
  const std::shared_ptr<const ControlNet>& previous() const { return previous_; }

  // control_net.copy().set_cond_hint(hint, strength, (start, end)).set_previous_controlnet(prev);
  // hint is [B,C,H,W] (the IMAGE with channels moved first).
  std::shared_ptr<const ControlNet> with_hint(const at::Tensor& hint, double strength, double start_percent,
                                              double end_percent, std::shared_ptr<const ControlNet> previous) const;

  // get_control(x_noisy, t, cond, batched_number) with the model's sampling (pre_run's
  // model_sampling_current and timestep_range): the merged residuals of this ControlNet and its
  // previous ones, or nullopt (None) when none of the chain is active at this sigma.
  std::optional<UNetControl> get_control(const at::Tensor& x_noisy, const at::Tensor& sigma, const ModelConds& conds,
                                         int64_t batched_number, const ModelSampling& sampling) const;

  // What sampling with `model` needs of every network in the chain: an SDXL-type ControlNet (adm)
  // on a model without adm, or a text-conditioning width that differs from the model's, is a ComfyError
  // naming the file.
  void check_compatible(const DiffusionModel& model) const;

 private:
  at::Tensor hint_for(const at::Tensor& x_noisy, int64_t batched_number) const;
  UNetControl control_merge(UNetControl control, const std::optional<UNetControl>& prev) const;

  std::shared_ptr<const ControlNetwork> network_;
  at::Tensor cond_hint_original_;
  double strength_ = 1.0;
  double start_percent_ = 0.0, end_percent_ = 1.0;
  std::shared_ptr<const ControlNet> previous_;

  mutable std::mutex cache_mutex_;
  mutable at::Tensor cond_hint_;      // upscaled for the latest latent size
  mutable at::Tensor adapter_input_;  // T2I: the hint the features were computed for
  mutable std::optional<UNetControl> adapter_features_;
};

// pre_run_control's result for one sampling run: a ControlNet chain bound to the model's sampling.
// process_conds makes one per distinct chain, so entries that shared a ControlNet still share (and
// batch under) one object.
class PreparedControl : public Object {
 public:
  PreparedControl(std::shared_ptr<const ControlNet> control, ModelSampling sampling)
      : control_(std::move(control)), sampling_(std::move(sampling)) {}
  std::string repr() const override { return control_->repr(); }
  std::optional<UNetControl> get_control(const at::Tensor& x_noisy, const at::Tensor& sigma, const ModelConds& conds,
                                         int64_t batched_number) const {
    return control_->get_control(x_noisy, sigma, conds, batched_number, sampling_);
  }

 private:
  std::shared_ptr<const ControlNet> control_;
  ModelSampling sampling_;
};

inline const ControlNet& controlnet_of(const Value& v) { return v.as<ControlNet>("CONTROL_NET"); }

}  // namespace comfy
