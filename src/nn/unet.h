// The SD1.x/SD2.x UNet (ComfyUI's openaimodel.UNetModel) as a function of (config, weights,
// inputs). The config comes from tensor names and shapes alone (detect_unet_config), so tiny
// test files and real multi-GB checkpoints take the same path.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "models/weights.h"

namespace comfy {

struct UNetConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  int64_t model_channels = 320;
  std::vector<int64_t> channel_mult;          // per level
  std::vector<int64_t> num_res_blocks;        // per level
  std::vector<int64_t> transformer_depth;     // per input block (ComfyUI's list)
  std::vector<int64_t> transformer_depth_output;
  int64_t transformer_depth_middle = 1;       // -1: no middle transformer
  int64_t context_dim = 768;
  int64_t num_heads = 8;                      // -1 when num_head_channels is used
  int64_t num_head_channels = -1;             // -1 when num_heads is used
  bool use_linear_in_transformer = false;
  int64_t adm_in_channels = 0;                // 0: no label embedding (y)
  json to_json() const;                       // for messages and the model's metadata
};

// ComfyUI's detect_unet_config on the keys under `w` (w is a view at the diffusion_model prefix).
// transformer_depth has one entry per input res block; transformer_depth_output is ComfyUI's list,
// last output block first. Heads are not in the shapes: a conv-proj UNet without adm gets SD15's
// num_heads 8, any other BASE's num_head_channels 64 (models/model_detection.h sets the family's).
// Throws ComfyError naming what is missing when the keys are not a UNet.
UNetConfig detect_unet_config(const Weights& w);

// Residuals a ControlNet adds (issue 7), laid out as ComfyUI's control dict {input, middle,
// output}: openaimodel.apply_control pops each list from its BACK, so the last `input` entry is
// added after input block 0, the last `middle` entry after the middle block, and the last `output`
// entry to the skip connection the first output block takes (the deepest one). An undefined tensor
// is None (nothing added); a residual that does not broadcast to the activation is skipped with a
// warning, as ComfyUI does. Empty lists: no control.
struct UNetControl {
  std::vector<at::Tensor> input, middle, output;
};

// The UNet's raw output (eps or v) for x [B,in,H,W] (already calculate_input-scaled and with any
// concat channels), timesteps [B] f32, context [B,T,context_dim], y [B,adm] when adm_in_channels.
at::Tensor unet_forward(const UNetConfig& config, const Weights& w, const at::Tensor& x,
                        const at::Tensor& timesteps, const at::Tensor& context,
                        const std::optional<at::Tensor>& y = std::nullopt,
                        const UNetControl* control = nullptr);

}  // namespace comfy
