#include "models/model_detection.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace comfy {

namespace {

const char* kDiffusionPrefix = "model.diffusion_model.";

struct Keys {
  std::vector<std::string> keys;  // sorted
  explicit Keys(const WeightSet& set) : keys(set.keys()) {}
  bool has(const std::string& k) const { return std::binary_search(keys.begin(), keys.end(), k); }
  bool has_prefix(const std::string& p) const {
    auto it = std::lower_bound(keys.begin(), keys.end(), p);
    return it != keys.end() && it->compare(0, p.size(), p) == 0;
  }
  bool any_contains(const std::string& s) const {
    return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.find(s) != std::string::npos; });
  }
  bool any_ends_with(const std::string& s) const {
    return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) {
      return k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0;
    });
  }
};

// Diffusion transformers and other non-UNet models, under the diffusion-model prefix `p`.
std::string describe_diffusion_model(const Keys& k, const std::string& p) {
  if (k.has(p + "joint_blocks.0.context_block.attn.qkv.weight")) {
    return "This is a Stable Diffusion 3 (MMDiT) model; SD3 is not supported yet.";
  }
  if (k.has_prefix(p + "double_blocks.0.") && k.has_prefix(p + "single_blocks.0.")) {
    return "This is a Flux-family model; Flux is not supported yet.";
  }
  if (k.has(p + "clf.1.weight")) return "This is a Stable Cascade model; Stable Cascade is not supported yet.";
  if (k.has_prefix(p + "double_layers.0.")) return "This is an AuraFlow model; AuraFlow is not supported yet.";
  if (k.has_prefix(p + "transformer_blocks.0.") || k.has_prefix(p + "blocks.0.") || k.has_prefix(p + "layers.0.")) {
    return "This is a diffusion transformer model; only SD1.x and SD2.x models are supported yet.";
  }
  return "";
}

std::string lora_hint(const std::string& file) {
  // model_detection_error_hint: ComfyUI adds this when the file name mentions a LoRA.
  std::string name = std::filesystem::path(file).filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (name.find("lora") == std::string::npos) return "";
  return "\nHINT: This seems to be a Lora file and Lora files should be put in the lora folder and loaded with a lora loader node..";
}

[[noreturn]] void refuse(const std::string& file, const std::string& what) {
  std::string msg = "ERROR: Could not detect model type of: " + file;
  if (!what.empty()) msg += "\n" + what;
  msg += lora_hint(file);
  throw ComfyError("RuntimeError", msg);
}

// The refusal sentence for a UNet that detect_unet_config read but that is not SD1.x/SD2.x, or "".
std::string describe_unet(const Keys& k, const std::string& p, const UNetConfig& c) {
  if (k.has_prefix(p + "input_blocks.1.1.time_stack.") || k.has_prefix(p + "input_blocks.1.1.time_mix_blocks.") ||
      k.has_prefix(p + "input_blocks.1.0.time_stack.")) {
    return "This is a Stable Video Diffusion model; video models are not supported yet.";
  }
  if (c.adm_in_channels == 2816) return "This is an SDXL checkpoint; SDXL is not supported yet.";
  if (c.adm_in_channels == 2560) return "This is an SDXL refiner checkpoint; SDXL is not supported yet.";
  if (c.adm_in_channels == 1536 || c.adm_in_channels == 2048) {
    return "This is an SD 2.1 unCLIP checkpoint; unCLIP models are not supported yet.";
  }
  if (c.adm_in_channels > 0) {
    return "This UNet has a class (adm) embedding of " + std::to_string(c.adm_in_channels) +
           " channels, like SDXL-family models; only SD1.x and SD2.x models are supported yet.";
  }
  if (c.in_channels == 8) {
    return "This UNet takes 8 input channels (an InstructPix2Pix or Zero123 model); these are not supported yet.";
  }
  if (c.in_channels == 7) return "This is the SD x4 upscaler; it is not supported yet.";
  if (c.in_channels != 4 && c.in_channels != 9) {
    return "This UNet takes " + std::to_string(c.in_channels) +
           " input channels; only SD1.x and SD2.x models (4 channels, 9 for inpainting) are supported.";
  }
  if (c.out_channels != 4) {
    return "This UNet outputs " + std::to_string(c.out_channels) + " channels; SD1.x and SD2.x output 4.";
  }
  const bool deep = std::any_of(c.transformer_depth.begin(), c.transformer_depth.end(), [](int64_t d) { return d > 1; }) ||
                    c.transformer_depth_middle > 1;
  if (c.context_dim == 0 || deep || c.transformer_depth_middle < 0) {
    return "This UNet does not have the SD1.x/SD2.x structure (one transformer per attention block); "
           "only SD1.x and SD2.x models are supported yet.";
  }
  return "";
}

}  // namespace

std::string unet_prefix_of(const WeightSet& set) {
  int count = 0;
  for (const std::string& key : set.keys()) {
    if (key.rfind(kDiffusionPrefix, 0) == 0 && ++count > 5) return kDiffusionPrefix;
  }
  return "";
}

Prediction sd20_prediction(const WeightSet& set, const std::string& unet_prefix, int64_t in_channels) {
  if (in_channels != 4) return Prediction::Eps;  // SD2.0 inpainting models are eps
  const std::string key = unet_prefix + "output_blocks.11.1.transformer_blocks.0.norm1.bias";
  if (!set.has(key)) return Prediction::Eps;
  at::Tensor bias = set.raw(key).to(at::kFloat);
  const double std = at::std(bias, /*unbiased=*/false).item<double>();
  return std > 0.09 ? Prediction::V : Prediction::Eps;
}

std::string describe_state_dict(const WeightSet& set) {
  const Keys k(set);
  const std::string p = kDiffusionPrefix;
  const bool has_unet = k.has_prefix(p);
  if (has_unet) {
    std::string what = describe_diffusion_model(k, p);
    if (!what.empty()) return what;
  }
  if (k.has("input_blocks.0.0.weight") && k.has_prefix("output_blocks.")) {
    return "This is a diffusion model alone (no CLIP or VAE); it belongs in models/diffusion_models and loads "
           "with UNETLoader.";
  }
  {
    std::string what = describe_diffusion_model(k, "");
    if (!what.empty() && !k.has_prefix("encoder.") && !k.has_prefix("text_model.")) {
      return what + " It is a diffusion model alone; such files belong in models/diffusion_models.";
    }
  }
  if (k.any_contains("lora_down.weight") || k.any_contains("lora_up.weight") || k.any_contains(".lora_A.") ||
      k.any_contains(".lora_B.") || k.has_prefix("lora_unet_") || k.has_prefix("lora_te")) {
    return "This is a LoRA; it belongs in models/loras and loads with LoraLoader.";
  }
  if (k.has_prefix("control_model.") || k.has("input_hint_block.0.weight") ||
      k.has("controlnet_cond_embedding.conv_in.weight")) {
    return "This is a ControlNet; it belongs in models/controlnet.";
  }
  if ((k.has("encoder.conv_in.weight") && k.has("decoder.conv_in.weight")) ||
      (k.has("first_stage_model.encoder.conv_in.weight") && !has_unet)) {
    return "This is a VAE; it belongs in models/vae and loads with VAELoader.";
  }
  if (k.has("emb_params") || k.has_prefix("string_to_param") || k.has("clip_l") || k.has("clip_g")) {
    return "This is a textual-inversion embedding; it belongs in models/embeddings (use it as embedding:NAME in a prompt).";
  }
  if (k.has_prefix("vision_model.") || k.has_prefix("visual.")) {
    return "This is a CLIP vision model; it belongs in models/clip_vision.";
  }
  if (k.has_prefix("text_model.") || k.has_prefix("transformer.resblocks.") || k.has_prefix("encoder.block.0.") ||
      k.has_prefix("model.layers.0.") || k.has_prefix("cond_stage_model.") || k.has_prefix("conditioner.")) {
    return "This is a text encoder alone; it belongs in models/text_encoders (CLIPLoader).";
  }
  if ((k.has("model.0.weight") && k.has_prefix("model.1.sub.")) || k.has("conv_first.weight") ||
      (k.has("body.0.weight") && k.has("body.1.weight"))) {
    return "This is an upscale model; it belongs in models/upscale_models (UpscaleModelLoader).";
  }
  if (k.any_ends_with(".alpha") && k.any_contains("lora")) {
    return "This is a LoRA; it belongs in models/loras and loads with LoraLoader.";
  }
  return "";
}

ModelDetection detect_model(const std::shared_ptr<const WeightSet>& set, const std::string& unet_prefix,
                            const std::string& file) {
  const Keys k(*set);
  if (!k.has(unet_prefix + "input_blocks.0.0.weight")) refuse(file, describe_state_dict(*set));
  ModelDetection d;
  d.unet = detect_unet_config(Weights(set, unet_prefix));
  std::string what = describe_unet(k, unet_prefix, d.unet);
  if (!what.empty()) refuse(file, what);
  d.inpaint = d.unet.in_channels > 4;
  if (!d.unet.use_linear_in_transformer) {
    // SD15: proj_in/proj_out are 1x1 convs; 8 heads at every width.
    d.family = "SD15";
    d.unet.num_heads = 8;
    d.unet.num_head_channels = -1;
    d.prediction = Prediction::Eps;
  } else {
    // SD20: linear proj_in/proj_out; 64 channels per head.
    d.family = "SD20";
    d.unet.num_heads = -1;
    d.unet.num_head_channels = 64;
    d.prediction = sd20_prediction(*set, unet_prefix, d.unet.in_channels);
  }
  return d;
}

}  // namespace comfy
