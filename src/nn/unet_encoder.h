// The UNet's encoder half, which the ControlNet (cldm) copies: input_blocks 1.. and the
// middle_block, plus the heads rule both read their configs with. Only the UNet and the ControlNet
// include this, so unet.h (seen by every model user) stays as it is.
#pragma once
#include <ATen/ATen.h>

#include <functional>

#include "nn/unet.h"

namespace comfy::unet {

// Heads are not in the shapes: ComfyUI's SD15 config says num_heads 8; every other family (SD20,
// SDXL, ...) keeps BASE's num_head_channels 64. A plain-conv-proj UNet without adm is SD1's.
void set_heads_from_structure(UNetConfig& c);
int64_t heads_for(const UNetConfig& c, int64_t channels);

// input_blocks 1..N over `h` (the output of input_blocks.0.0): `after_block` sees h after each
// block (res block with its transformer, or downsample), where ComfyUI's "input" control points
// and the ControlNet's zero convs sit; it may change h.
at::Tensor input_blocks(const UNetConfig& c, const Weights& w, at::Tensor h, const at::Tensor& emb,
                        const at::Tensor& context, const std::function<void(at::Tensor&)>& after_block);
// middle_block (res, transformer, res; or what transformer_depth_middle leaves of it).
at::Tensor middle_block(const UNetConfig& c, const Weights& w, at::Tensor h, const at::Tensor& emb,
                        const at::Tensor& context);

}  // namespace comfy::unet
