// The two halves of comfy_extras/nodes_custom_sampler.py: custom_sampler.cpp (schedulers and
// sigma tools, registration in ComfyUI's order) and custom_sampler_run.cpp (SAMPLER makers,
// guiders, noise sources and the two sampling nodes).
#pragma once
#include <vector>

#include "core/json.h"
#include "graph/node_def.h"

namespace comfy {

// A node of the family: schema-style, python_module comfy_extras.nodes_custom_sampler.
NodeDef custom_node(const char* name, const char* category);
json ints(int64_t def, int64_t min, int64_t max);
// io.Float.Input(..., round=False), plus `extra` options.
json floats(double def, double min, double max, double step, json extra = json::object());
json cfg_opts();  // the cfg FLOAT of the guiders and SamplerCustom

NodeDef SamplerCustom();
NodeDef KSamplerSelect();
std::vector<NodeDef> sampler_option_nodes();  // SamplerEulerAncestral ... SamplerSEEDS2, in order
NodeDef CFGGuiderNode();
NodeDef DualCFGGuiderNode();
NodeDef BasicGuiderNode();
NodeDef RandomNoise();
NodeDef DisableNoise();
NodeDef AddNoise();
NodeDef SamplerCustomAdvanced();

}  // namespace comfy
