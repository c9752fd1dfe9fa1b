// The merge nodes of comfy_extras/nodes_model_merging.py (ModelMergeSimple, ModelMergeBlocks,
// ModelMergeSubtract, ModelMergeAdd, CLIPMergeSimple, CLIPMergeSubtract, CLIPMergeAdd) and the SD1
// / SD2 / SDXL block mergers of nodes_model_merging_model_specific.py. (CheckpointSave, CLIPSave,
// VAESave and ModelSave, from the same ComfyUI file, are in model_saving.cpp.)
//
// A merge is ComfyUI's ModelPatcher.add_patches(model2's key patches, strength_patch,
// strength_model) on a clone of model1: nothing is computed here. Each merged weight becomes a
// WeightPatch on a new WeightSet over model1's tensors, applied lazily when a layer first asks
// for it, as calculate_weight does it: in f32,
//     w = w1 * strength_model (skipped when strength_model == 1)
//     w = w + strength_patch * w2 (skipped when strength_patch == 0; w2 is model2's weight with
//                                   its own patches, in f32)
// and then rounded to the set's patch dtype: f32 for the UNet (ComfyUI keeps the UNet in f32 on
// the CPU), fp16 for CLIP.
#include <spdlog/spdlog.h>

#include <sstream>
#include <utility>
#include <vector>

#include "graph/execution_context.h"
#include "models/clip_model.h"
#include "models/diffusion_model.h"
#include "nodes/all.h"

namespace comfy {
namespace {

const char* kCategory = "advanced/model_merging";
const char* kModule = "comfy_extras.nodes_model_merging";

std::string shape_text(at::IntArrayRef s) {
  std::ostringstream o;
  o << "torch.Size([";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "])";
  return o.str();
}

// One add_patches entry: model2's weight `other_key` of `other`, weighted.
WeightPatch merge_patch(std::shared_ptr<const WeightSet> other, std::string other_key, std::string key,
                        double strength_patch, double strength_model) {
  WeightPatch p;
  p.apply = [other = std::move(other), other_key = std::move(other_key), key = std::move(key), strength_patch,
             strength_model](at::Tensor w) {
    if (strength_model != 1.0) w.mul_(strength_model);
    if (strength_patch != 0.0) {
      at::Tensor diff = other->get(other_key, at::kFloat);
      if (diff.sizes() != w.sizes()) {
        spdlog::warn("WARNING SHAPE MISMATCH {} WEIGHT NOT MERGED {} != {}", key, shape_text(diff.sizes()),
                     shape_text(w.sizes()));
      } else {
        // strength * diff is its own rounding step in ComfyUI (no fused multiply-add).
        w.add_(diff.mul(strength_patch));
      }
    }
    return w;
  };
  return p;
}

// ModelMergeBlocks' ratio for a UNet key: the longest block prefix the key starts with, else the
// first block's ratio.
using BlockRatios = std::vector<std::pair<std::string, double>>;

double block_ratio(const BlockRatios& blocks, const std::string& unet_key) {
  double ratio = blocks.front().second;
  size_t best = 0;
  for (const auto& [prefix, r] : blocks) {
    if (unet_key.compare(0, prefix.size(), prefix) == 0 && best < prefix.size()) {
      ratio = r;
      best = prefix.size();
    }
  }
  return ratio;
}

// model1 with model2's UNet weights patched in: `strengths(key)` gives (strength_patch,
// strength_model) for each UNet key model1 also has.
template <class Strengths>
Value merge_models(const NodeInputs& in, Strengths strengths) {
  const DiffusionModel& m1 = model_of(in["model1"]);
  const DiffusionModel& m2 = model_of(in["model2"]);
  std::map<std::string, std::vector<WeightPatch>> patches;
  for (const std::string& k : m2.weights.keys()) {
    if (!m1.weights.has(k)) continue;
    auto [strength_patch, strength_model] = strengths(k);
    patches[m1.weights.prefix + k].push_back(
        merge_patch(m2.weights.set, m2.weights.prefix + k, "diffusion_model." + k, strength_patch, strength_model));
  }
  auto set = m1.weights.set->with_patches(std::move(patches))->with_patch_dtype(at::kFloat);
  return Value(std::static_pointer_cast<const Object>(m1.with_weights(Weights(set, m1.weights.prefix))));
}

// clip1 with clip2's weights patched in (position_ids and logit_scale are never merged).
Value merge_clips(const NodeInputs& in, double strength_patch, double strength_model) {
  const ClipModel& c1 = clip_of(in["clip1"]);
  const ClipModel& c2 = clip_of(in["clip2"]);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  std::map<std::string, std::vector<WeightPatch>> patches;
  for (const std::string& k : c2.weights()->keys()) {
    if (ends_with(k, ".position_ids") || ends_with(k, ".logit_scale")) continue;
    if (!c1.weights()->has(k)) continue;
    patches[k].push_back(merge_patch(c2.weights(), k, k, strength_patch, strength_model));
  }
  return Value(std::static_pointer_cast<const Object>(c1.with_weights(c1.weights()->with_patches(std::move(patches)))));
}

json ratio_opts() { return {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}}; }
json multiplier_opts() { return {{"default", 1.0}, {"min", -10.0}, {"max", 10.0}, {"step", 0.01}}; }

NodeDef merge_node(const std::string& name) {
  NodeDef def(name);
  def.display_name(name).category(kCategory).python_module(kModule);
  return def;
}

NodeDef ModelMergeSimple() {
  return merge_node("ModelMergeSimple")
      .input("model1", "MODEL")
      .input("model2", "MODEL")
      .input("ratio", "FLOAT", ratio_opts())
      .output("MODEL")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double ratio = in.get_float("ratio");
        return NodeOutput({merge_models(in, [&](const std::string&) { return std::pair(1.0 - ratio, ratio); })});
      });
}

NodeDef ModelMergeSubtract() {
  return merge_node("ModelMergeSubtract")
      .input("model1", "MODEL")
      .input("model2", "MODEL")
      .input("multiplier", "FLOAT", multiplier_opts())
      .output("MODEL")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double m = in.get_float("multiplier");
        return NodeOutput({merge_models(in, [&](const std::string&) { return std::pair(-m, m); })});
      });
}

NodeDef ModelMergeAdd() {
  return merge_node("ModelMergeAdd")
      .input("model1", "MODEL")
      .input("model2", "MODEL")
      .output("MODEL")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({merge_models(in, [](const std::string&) { return std::pair(1.0, 1.0); })});
      });
}

// ModelMergeBlocks and its model-specific subclasses: one ratio input per block prefix.
NodeDef blocks_node(const std::string& name, const std::vector<std::string>& blocks, const std::string& category,
                    const std::string& module) {
  NodeDef def = merge_node(name);
  def.category(category).python_module(module);
  def.input("model1", "MODEL").input("model2", "MODEL");
  for (const std::string& b : blocks) def.input(b, "FLOAT", ratio_opts());
  def.output("MODEL");
  def.run([blocks](ExecutionContext&, const NodeInputs& in) {
    BlockRatios ratios;
    for (const std::string& b : blocks) ratios.emplace_back(b, in.get_float(b));
    return NodeOutput({merge_models(in, [&](const std::string& k) {
      const double r = block_ratio(ratios, k);
      return std::pair(1.0 - r, r);
    })});
  });
  return def;
}

NodeDef ModelMergeBlocks() { return blocks_node("ModelMergeBlocks", {"input", "middle", "out"}, kCategory, kModule); }

// SD1 and SD2 share the same blocks (ComfyUI registers ModelMergeSD2 as the same class); SDXL's
// input names have no trailing dot.
NodeDef unet_blocks_node(const std::string& name, int in_out_blocks, bool dot) {
  const std::string d = dot ? "." : "";
  std::vector<std::string> blocks{"time_embed.", "label_emb."};
  for (int i = 0; i < in_out_blocks; ++i) blocks.push_back("input_blocks." + std::to_string(i) + d);
  for (int i = 0; i < 3; ++i) blocks.push_back("middle_block." + std::to_string(i) + d);
  for (int i = 0; i < in_out_blocks; ++i) blocks.push_back("output_blocks." + std::to_string(i) + d);
  blocks.push_back("out.");
  return blocks_node(name, blocks, "advanced/model_merging/model_specific",
                     "comfy_extras.nodes_model_merging_model_specific");
}

NodeDef CLIPMergeSimple() {
  return merge_node("CLIPMergeSimple")
      .input("clip1", "CLIP")
      .input("clip2", "CLIP")
      .input("ratio", "FLOAT", ratio_opts())
      .output("CLIP")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double ratio = in.get_float("ratio");
        return NodeOutput({merge_clips(in, 1.0 - ratio, ratio)});
      });
}

NodeDef CLIPMergeSubtract() {
  return merge_node("CLIPMergeSubtract")
      .input("clip1", "CLIP")
      .input("clip2", "CLIP")
      .input("multiplier", "FLOAT", multiplier_opts())
      .output("CLIP")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double m = in.get_float("multiplier");
        return NodeOutput({merge_clips(in, -m, m)});
      });
}

NodeDef CLIPMergeAdd() {
  return merge_node("CLIPMergeAdd")
      .input("clip1", "CLIP")
      .input("clip2", "CLIP")
      .output("CLIP")
      .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({merge_clips(in, 1.0, 1.0)}); });
}

}  // namespace

void register_model_merging(Registry& r) {
  // NODE_CLASS_MAPPINGS order of nodes_model_merging.py (the savers are in model_saving.cpp).
  r.add(ModelMergeSimple());
  r.add(ModelMergeBlocks());
  r.add(ModelMergeSubtract());
  r.add(ModelMergeAdd());
  r.add(CLIPMergeSimple());
  r.add(CLIPMergeSubtract());
  r.add(CLIPMergeAdd());
  r.add(unet_blocks_node("ModelMergeSD1", 12, true));
  r.add(unet_blocks_node("ModelMergeSD2", 12, true));
  r.add(unet_blocks_node("ModelMergeSDXL", 9, false));
}

}  // namespace comfy
