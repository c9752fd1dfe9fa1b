// nodes_custom_sampler.SDTurboScheduler's schedule.
#include "sampling/custom_schedulers.h"

#include <algorithm>

namespace comfy {

at::Tensor sd_turbo_sigmas(const ModelSampling& sampling, int64_t steps, double denoise) {
  int64_t start_step = 10 - static_cast<int64_t>(10 * denoise);
  at::Tensor timesteps = at::flip(at::arange(1, 11, at::kLong) * 100 - 1, {0});
  int64_t begin = std::clamp<int64_t>(start_step, 0, 10), end = std::clamp<int64_t>(start_step + steps, begin, 10);
  at::Tensor sigmas = sampling.sigma(timesteps.slice(0, begin, end));
  return at::cat({sigmas, at::zeros({1}, sigmas.options())});
}

}  // namespace comfy
