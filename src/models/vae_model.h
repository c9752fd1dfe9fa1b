// VAE: ComfyUI's VAE object (comfy/sd.py VAE) over the KL autoencoder of SD1.x/SD2.x.
#pragma once
#include <memory>

#include "graph/value.h"
#include "models/weights.h"

namespace comfy {

class Vae;  // defined by the VAE implementation (models/vae_model.cpp)

// A VAE over weights in the standalone layout ("encoder.*", "decoder.*", "quant_conv.*",
// "post_quant_conv.*"): pass a view at "first_stage_model." for a checkpoint. ComfyError naming
// what is missing when the keys are not a VAE.
std::shared_ptr<const Vae> make_vae(const Weights& w);

}  // namespace comfy
