// MODEL: a diffusion model as ComfyUI's ModelPatcher holds it: the family's config, the UNet
// weights (a WeightSet view, patched lazily by LoRA and merges), its model sampling and latent
// format. Immutable: nodes that change a model (LoRA, merges, sampling overrides) make a new one
// that shares the weights.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "graph/value.h"
#include "models/latent_format.h"
#include "models/weights.h"
#include "nn/unet.h"
#include "sampling/model_sampling.h"

namespace comfy {

// What the conditioning of one model call carries besides x and sigma (ComfyUI's model_conds).
struct ModelConds {
  at::Tensor c_crossattn;  // [B,T,C] context
  at::Tensor c_concat;     // inpainting UNets: [B,5,H,W] mask + masked latent; undefined otherwise
  at::Tensor y;            // adm (SD2 unCLIP, SDXL); undefined otherwise
  const UNetControl* control = nullptr;
};

struct DiffusionModel : Object {
  std::string family;           // ComfyUI's supported_models class name: "SD15", "SD20", ...
  UNetConfig unet;
  Weights weights;              // a view at the UNet prefix ("input_blocks.0.0.weight", ...)
  ModelSampling sampling;
  LatentFormat latent_format;
  std::string repr() const override { return "<comfy.model_patcher.ModelPatcher object>"; }

  // BaseModel.apply_model: calculate_input, concat, timestep, UNet, calculate_denoised.
  at::Tensor apply_model(const at::Tensor& x, const at::Tensor& sigma, const ModelConds& conds) const;
  // A copy of this model over other weights (LoRA, merges): everything else is shared.
  std::shared_ptr<const DiffusionModel> with_weights(Weights w) const;
};

inline const DiffusionModel& model_of(const Value& v) { return v.as<DiffusionModel>("MODEL"); }

}  // namespace comfy
