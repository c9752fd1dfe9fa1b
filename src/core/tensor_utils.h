// Small tensor helpers that ComfyUI's nodes share (comfy/utils.py, comfy_extras/nodes_mask.py),
// written once here for the image, mask, latent and sampling code.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace comfy {

// Python's floor division (`a // b`), which rounds toward negative infinity.
inline int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// comfy.utils.repeat_to_batch_size along dim 0: cut to `batch`, or repeat whole and cut.
at::Tensor repeat_to_batch_size(const at::Tensor& t, int64_t batch);

// nodes_mask.composite: pastes `source` [B,C,h,w] into `destination` [B,C,H,W] (modified in place
// and returned; pass a clone) at (x, y) / multiplier, through `mask` (any [..,h',w'] mask,
// resized bilinearly to the source); null mask = all ones. Used by ImageCompositeMasked
// (multiplier 1) and LatentCompositeMasked (multiplier 8).
at::Tensor composite(at::Tensor destination, at::Tensor source, int64_t x, int64_t y, const at::Tensor* mask,
                     int64_t multiplier, bool resize_source);

}  // namespace comfy
