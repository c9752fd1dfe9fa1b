// comfy.samplers.KSampler (sigmas, step cuts) and nodes.common_ksampler (noise, mask, run).
#include "sampling/ksampler.h"

#include <algorithm>

#include "sampling/cfg_guider.h"
#include "sampling/noise.h"
#include "sampling/schedulers.h"

namespace comfy {
at::Tensor fix_empty_latent_channels(const DiffusionModel& model, const at::Tensor& latent) {
  int64_t channels = model.latent_format.latent_channels;
  if (latent.dim() >= 2 && latent.size(1) != channels && at::count_nonzero(latent).item<int64_t>() == 0) {
    std::vector<int64_t> reps(latent.dim(), 1);
    reps[1] = (channels + latent.size(1) - 1) / latent.size(1);
    return latent.repeat(reps).narrow(1, 0, channels);
  }
  return latent;
}

Latent common_ksampler(std::shared_ptr<const DiffusionModel> model, const Conditioning& positive,
                       const Conditioning& negative, const Latent& latent, const KSamplerArgs& args) {
  at::Tensor latent_image = fix_empty_latent_channels(*model, latent.samples);
  at::Tensor noise = args.disable_noise ? at::zeros(latent_image.sizes(), latent_image.options())
                                        : prepare_noise(latent_image, args.seed, latent.batch_index);

  // KSampler.sample: the step cuts of KSamplerAdvanced.
  at::Tensor sigmas = ksampler_sigmas(model->sampling, args.sampler_name, args.scheduler, args.steps, args.denoise);
  Latent out = latent;
  if (args.last_step && *args.last_step < sigmas.size(0) - 1) {
    sigmas = sigmas.narrow(0, 0, *args.last_step + 1).clone();
    if (args.force_full_denoise) sigmas[-1] = 0;
  }
  if (args.start_step) {
    if (*args.start_step < sigmas.size(0) - 1) {
      sigmas = sigmas.narrow(0, *args.start_step, sigmas.size(0) - *args.start_step);
    } else {
      out.samples = latent_image;
      return out;
    }
  }

  std::shared_ptr<const Sampler> sampler = sampler_object(args.sampler_name);
  CFGGuider guider(model, positive, negative, args.cfg);
  SamplerRun run;
  run.seed = args.seed;
  int64_t total = sigmas.size(0) - 1;
  if (args.progress)
    run.callback = [&](const SamplerStep& s) { args.progress(s.i + 1, total, s.denoised); };
  out.samples = guider.sample(noise, latent_image, *sampler, sigmas, latent.noise_mask, run);
  return out;
}

}  // namespace comfy
