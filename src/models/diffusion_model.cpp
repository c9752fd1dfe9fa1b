// BaseModel._apply_model (comfy/model_base.py) for the SD1.x/SD2.x UNet: the noisy latent is
// scaled for the network (calculate_input), the inpainting channels are appended, the sigma
// becomes a timestep, and the network's eps/v output becomes a denoised latent.
#include "models/diffusion_model.h"

#include "core/error.h"

namespace comfy {

at::Tensor DiffusionModel::apply_model(const at::Tensor& x, const at::Tensor& sigma, const ModelConds& conds) const {
  at::Tensor xc = sampling.calculate_input(sigma, x);
  if (conds.c_concat.defined()) {
    if (conds.c_concat.size(0) != xc.size(0) || conds.c_concat.size(-1) != xc.size(-1) ||
        conds.c_concat.size(-2) != xc.size(-2))
      throw ComfyError("ValueError", "apply_model: c_concat does not match the latent's batch and size");
    xc = at::cat({xc, conds.c_concat.to(xc.dtype())}, 1);
  }
  if (xc.size(1) != unet.in_channels)
    throw ComfyError("ValueError", "apply_model: the UNet takes " + std::to_string(unet.in_channels) +
                                       " input channels, got " + std::to_string(xc.size(1)) +
                                       (unet.in_channels > 4 ? " (an inpainting model needs its concat conds)" : ""));
  // The UNet computes in f32 on the CPU (ComfyUI upcasts the fp16 file weights).
  xc = xc.to(at::kFloat);
  at::Tensor t = sampling.timestep(sigma).to(at::kFloat);
  at::Tensor context = conds.c_crossattn.defined() ? conds.c_crossattn.to(at::kFloat) : conds.c_crossattn;
  std::optional<at::Tensor> y;
  if (conds.y.defined()) y = conds.y.to(at::kFloat);
  at::Tensor model_output = unet_forward(unet, weights, xc, t, context, y, conds.control);
  return sampling.calculate_denoised(sigma, model_output.to(at::kFloat), x);
}

std::shared_ptr<const DiffusionModel> DiffusionModel::with_weights(Weights w) const {
  auto copy = std::make_shared<DiffusionModel>(*this);
  copy->weights = std::move(w);
  return copy;
}

}  // namespace comfy
