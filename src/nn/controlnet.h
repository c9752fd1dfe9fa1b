// The SD ControlNet (ComfyUI's comfy/cldm/cldm.py ControlNet) as a function of (config, weights,
// inputs): the UNet's input half and middle block, with the hint added after input block 0
// (input_hint_block: eight 3x3 convs, SiLU between, three of them stride 2), a 1x1 "zero conv"
// after every input block and one after the middle block (middle_block_out). Sizes come from the
// tensor shapes (detect_unet_config), so tiny test files and real ones take the same path.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "models/weights.h"
#include "nn/unet.h"

namespace comfy {

struct ControlNetConfig {
  UNetConfig unet;             // the copied UNet half (no output blocks; out_channels unused)
  int64_t hint_channels = 3;   // input_hint_block.0.weight's input channels
};

// The config of the ControlNet under `w` (a view at its prefix: "control_model." or ""). Throws
// ComfyError naming what is missing when the keys are not a ControlNet.
ControlNetConfig detect_controlnet_config(const Weights& w);

// ControlNet.forward: x [B,in,H,W] (calculate_input-scaled), hint [B,hint_channels,8H,8W],
// timesteps [B], context [B,T,context_dim], y [B,adm] when the config has adm_in_channels (an
// SDXL ControlNet: without y it throws, as ComfyUI does). Returns the control dict: `output` holds
// one residual per input block (in block order), `middle` the middle block's; `input` is empty.
UNetControl controlnet_forward(const ControlNetConfig& config, const Weights& w, const at::Tensor& x,
                               const at::Tensor& hint, const at::Tensor& timesteps, const at::Tensor& context,
                               const std::optional<at::Tensor>& y = std::nullopt);

}  // namespace comfy
