// The sigma schedules of ComfyUI's scheduler combo (comfy/samplers.py SCHEDULER_HANDLERS) and the
// custom-sampling schedulers' math (karras, exponential, polyexponential, vp, beta, ...).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "sampling/model_sampling.h"

namespace comfy {

// KSampler.SCHEDULERS in ComfyUI's order.
const std::vector<std::string>& scheduler_names();
// comfy.samplers.calculate_sigmas: steps+1 sigmas ending in 0, f32. ValueError for an unknown name.
at::Tensor calculate_sigmas(const ModelSampling& sampling, const std::string& scheduler, int64_t steps);

}  // namespace comfy
