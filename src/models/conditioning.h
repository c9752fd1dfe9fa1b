// CONDITIONING: ComfyUI's list of [cond tensor, options dict]. Each entry is one prompt's
// encoding ([1, tokens, width]) with the options the conditioning nodes set. A field that is
// absent in ComfyUI's dict is nullopt / an undefined tensor here, since nodes copy, average and
// test for presence ("if 'pooled_output' in ...") exactly as ComfyUI does.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/value.h"

namespace comfy {

struct CondArea {
  // ConditioningSetArea stores (height // 8, width // 8, y // 8, x // 8) in latent units;
  // ConditioningSetAreaPercentage stores ("percentage", h, w, y, x) as fractions.
  bool percentage = false;
  std::array<double, 4> hwyx{0, 0, 0, 0};
};

struct CondOptions {
  at::Tensor pooled_output;                 // [1, width]
  std::optional<CondArea> area;
  std::optional<double> strength;           // absent means 1.0
  std::optional<bool> set_area_to_bounds;
  at::Tensor mask;                          // [B?,H,W] in pixels or latents, resized by the sampler
  std::optional<double> mask_strength;
  std::optional<double> start_percent, end_percent;
  at::Tensor concat_latent_image;           // InpaintModelConditioning
  at::Tensor concat_mask;
  // ControlNet and later families hang their objects here (issue 7): a chain of control models.
  std::shared_ptr<const Object> control;
  std::optional<bool> control_apply_to_uncond;
};

struct CondEntry {
  at::Tensor cond;  // [1, tokens, width]
  CondOptions options;
};

struct Conditioning : Object {
  std::vector<CondEntry> entries;
  std::string repr() const override { return "[[tensor(...), {...}]]"; }
};

inline Value conditioning_value(Conditioning c) { return Value::make(std::move(c)); }
inline const Conditioning& conditioning_of(const Value& v) { return v.as<Conditioning>("CONDITIONING"); }

}  // namespace comfy
