// comfy.samplers.KSampler and nodes.common_ksampler: the sigmas of a (sampler, scheduler, steps,
// denoise) choice (ksampler_sigmas, schedulers.h), the start/last step cuts of KSamplerAdvanced, the initial noise and the
// inpainting mask of the LATENT, and a CFGGuider run over them.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "models/conditioning.h"
#include "models/diffusion_model.h"
#include "models/latent.h"
#include "sampling/sampler.h"

namespace comfy {

// comfy.sample.fix_empty_latent_channels: an all-zero latent with the wrong channel count is
// repeated to the model's latent channels.
at::Tensor fix_empty_latent_channels(const DiffusionModel& model, const at::Tensor& latent);

struct KSamplerArgs {
  uint64_t seed = 0;
  int64_t steps = 20;
  double cfg = 8.0;
  std::string sampler_name = "euler", scheduler = "normal";
  double denoise = 1.0;
  bool disable_noise = false;
  std::optional<int64_t> start_step, last_step;
  bool force_full_denoise = false;
  // Called after each step with (step + 1, total steps, the step's denoised x0 for previews);
  // may throw InterruptedError.
  std::function<void(int64_t, int64_t, const at::Tensor&)> progress;
};

// nodes.common_ksampler: the sampled LATENT (a copy of `latent` with new samples).
Latent common_ksampler(std::shared_ptr<const DiffusionModel> model, const Conditioning& positive,
                       const Conditioning& negative, const Latent& latent, const KSamplerArgs& args);

}  // namespace comfy
