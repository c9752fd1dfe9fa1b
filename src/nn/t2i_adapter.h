// The T2I adapters (ComfyUI's comfy/t2i_adapter/adapter.py): Adapter (the "full" one, SD1 and
// SDXL) and Adapter_light, as functions of (config, weights, hint). Their output is a control
// dict whose `input` list (and for SDXL adapters `middle`) the UNet adds to its input blocks.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "models/weights.h"
#include "nn/unet.h"

namespace comfy {

struct T2IAdapterConfig {
  bool light = false;             // Adapter_light ("body.0.in_conv.weight")
  std::vector<int64_t> channels;  // per level
  int64_t nums_rb = 2;            // res blocks per level
  int64_t cin = 64;               // channels after the pixel unshuffle
  int64_t ksize = 3;              // full: the kernel of in_conv / block2 / skep
  bool use_conv = false;          // full: downsampling by a stride-2 conv (else average pooling)
  bool xl = false;                // full: SDXL layout (cin 256 or 768; unshuffle 16)
  int64_t unshuffle_amount() const { return xl ? 16 : 8; }
  int64_t input_channels() const { return cin / (unshuffle_amount() * unshuffle_amount()); }
};

// load_t2i_adapter's detection on keys without prefix (diffusers keys already renamed). Throws
// ComfyError when the keys are neither adapter.
T2IAdapterConfig detect_t2i_adapter_config(const Weights& w);

// Adapter.forward / Adapter_light.forward for hint [B,input_channels,H,W] (H, W multiples of the
// unshuffle amount). Undefined tensors stand for ComfyUI's None entries.
UNetControl t2i_adapter_forward(const T2IAdapterConfig& config, const Weights& w, const at::Tensor& hint);

}  // namespace comfy
