// Helpers shared by the sampling node families (sampling.cpp, custom_sampler.cpp).
#pragma once
#include <memory>

#include "core/json.h"
#include "graph/value.h"
#include "models/diffusion_model.h"

namespace comfy {

// The MODEL input as the shared model object guiders keep.
std::shared_ptr<const DiffusionModel> model_ptr(const Value& v);
// A seed INT's options: 0..0xffffffffffffffff with control_after_generate, plus `extra`.
json seed_opts(json extra);

}  // namespace comfy
