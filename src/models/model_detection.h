// Which model family a state dict holds, as ComfyUI's model_detection.model_config_from_unet and
// supported_models decide it, for the families this build runs (SD1.x and SD2.x, plain and
// inpainting), and a clear refusal naming what anything else looks like (SDXL, SD3, Flux, a VAE,
// a LoRA, a text encoder alone, ...).
//
// Detection is shape-driven: every size comes from the tensor names and shapes (so the tiny test
// checkpoints and real files take the same path). ComfyUI's SD15/SD20 configs also pin
// model_channels 320 and context_dim 768/1024; we accept any widths with the SD1/SD2 structure.
#pragma once
#include <memory>
#include <string>

#include "models/weights.h"
#include "nn/unet.h"
#include "sampling/model_sampling.h"

namespace comfy {

struct ModelDetection {
  std::string family;  // ComfyUI's supported_models class name: "SD15" or "SD20"
  UNetConfig unet;     // detect_unet_config plus the family's heads (SD15: num_heads 8, SD20: 64 per head)
  Prediction prediction = Prediction::Eps;
  bool inpaint = false;  // in_channels 9 (BASE.inpaint_model: mask + masked latent concatenated)
};

// ComfyUI's unet_prefix_from_state_dict for the layouts we read: "model.diffusion_model." when more
// than 5 keys start with it, else "" (a diffusion-model-only file).
std::string unet_prefix_of(const WeightSet& set);

// The family of the UNet under `unet_prefix` in `set`. Throws ComfyError RuntimeError
// "ERROR: Could not detect model type of: <file>" followed by what the file looks like (see
// describe_state_dict) when it is not an SD1.x/SD2.x UNet.
ModelDetection detect_model(const std::shared_ptr<const WeightSet>& set, const std::string& unet_prefix, const std::string& file);

// What a state dict that is not a supported checkpoint looks like, as one sentence naming the
// folder it belongs in ("This is a VAE; it belongs in models/vae and loads with VAELoader."), or
// "" when it is not recognised.
std::string describe_state_dict(const WeightSet& set);

// SD20.model_type: v-prediction when the UNet takes 4 channels and the population std of
// output_blocks.11.1.transformer_blocks.0.norm1.bias exceeds 0.09 (ComfyUI's heuristic).
Prediction sd20_prediction(const WeightSet& set, const std::string& unet_prefix, int64_t in_channels);

}  // namespace comfy
