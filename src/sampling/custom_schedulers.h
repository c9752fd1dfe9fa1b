// Schedules of the custom-sampling nodes that comfy.samplers does not have (the others are in
// schedulers.h).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "sampling/model_sampling.h"

namespace comfy {

// SDTurboScheduler: the timesteps 999, 899, ..., 99 from 10 - int(10 * denoise), `steps` of
// them, as sigmas, then 0.
at::Tensor sd_turbo_sigmas(const ModelSampling& sampling, int64_t steps, double denoise);

}  // namespace comfy
