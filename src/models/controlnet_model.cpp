// comfy/controlnet.py: load_controlnet_state_dict (the ldm and T2I layouts, diff ControlNets),
// ControlBase.control_merge, ControlNet.get_control and T2IAdapter.get_control.
#include "models/controlnet_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "core/upscale.h"
#include "models/checkpoint.h"
#include "models/lora.h"
#include "nn/unet_encoder.h"

namespace comfy {
namespace {

bool ends_with(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

[[noreturn]] void unsupported(const std::filesystem::path& path, const std::string& what) {
  throw ComfyError("RuntimeError", "ERROR: " + path.string() + " is " + what + ", which comfy.cpp cannot load yet");
}

// load_t2i_adapter's diffusers renames: adapter.body.{i}.resnets.{j}. -> body.{2i+j}.,
// adapter.body.{i}. -> body.{2i}., adapter. -> "".
std::shared_ptr<const WeightSet> t2i_from_diffusers(const WeightSet& set) {
  std::unordered_map<std::string, at::Tensor> out;
  for (const std::string& k : set.keys()) {
    std::string nk = k;
    bool done = false;
    for (int i = 0; i < 4 && !done; ++i) {
      for (int j = 0; j < 2 && !done; ++j) {
        const std::string p = "adapter.body." + std::to_string(i) + ".resnets." + std::to_string(j) + ".";
        if (k.rfind(p, 0) == 0) {
          nk = "body." + std::to_string(i * 2 + j) + "." + k.substr(p.size());
          done = true;
        }
      }
      const std::string p = "adapter.body." + std::to_string(i) + ".";
      if (!done && k.rfind(p, 0) == 0) {
        nk = "body." + std::to_string(i * 2) + "." + k.substr(p.size());
        done = true;
      }
    }
    if (!done && k.rfind("adapter.", 0) == 0) nk = k.substr(8);
    out[nk] = set.raw(k);
  }
  return WeightSet::from_tensors(std::move(out));
}

// broadcast_image_to: a hint batch repeated to the batch of the call (cond and uncond halves).
at::Tensor broadcast_image_to(at::Tensor t, int64_t target, int64_t batched_number) {
  const int64_t current = t.size(0);
  if (current == 1) return t;
  const int64_t per_batch = target / batched_number;
  t = t.narrow(0, 0, std::min(per_batch, current));
  if (per_batch > t.size(0)) {
    std::vector<at::Tensor> parts(static_cast<size_t>(per_batch / t.size(0)), t);
    parts.push_back(t.narrow(0, 0, per_batch % t.size(0)));
    t = at::cat(parts);
  }
  if (t.size(0) == target) return t;
  return at::cat(std::vector<at::Tensor>(static_cast<size_t>(batched_number), t));
}

// The config of a diffusers-layout ControlNet, read from its shapes (ComfyUI matches
// unet_config_from_diffusers_unet against a table of the released sizes; the structure is the same).
UNetConfig diffusers_controlnet_config(const WeightSet& set) {
  const std::vector<std::string> keys = set.keys();
  auto has_prefix = [&](const std::string& p) {
    auto it = std::lower_bound(keys.begin(), keys.end(), p);
    return it != keys.end() && it->compare(0, p.size(), p) == 0;
  };
  auto count = [&](const std::string& pre, const std::string& post) {
    int64_t n = 0;
    while (has_prefix(pre + std::to_string(n) + post)) ++n;
    return n;
  };
  auto shape = [&](const std::string& k) { return set.raw(k).sizes().vec(); };
  UNetConfig c;
  const auto conv_in = shape("conv_in.weight");
  c.model_channels = conv_in.at(0);
  c.in_channels = conv_in.at(1);
  c.channel_mult.clear();
  c.num_res_blocks.clear();
  c.context_dim = 0;
  bool have_context = false;
  const int64_t levels = count("down_blocks.", ".");
  for (int64_t i = 0; i < levels; ++i) {
    const std::string b = "down_blocks." + std::to_string(i) + ".";
    const int64_t nrb = count(b + "resnets.", ".");
    c.num_res_blocks.push_back(nrb);
    c.channel_mult.push_back(shape(b + "resnets.0.conv2.weight").at(0) / c.model_channels);
    for (int64_t j = 0; j < nrb; ++j) {
      const std::string a = b + "attentions." + std::to_string(j) + ".";
      const int64_t depth = count(a + "transformer_blocks.", ".");
      c.transformer_depth.push_back(depth);
      if (depth > 0 && !have_context) {
        have_context = true;
        c.context_dim = shape(a + "transformer_blocks.0.attn2.to_k.weight").at(1);
        c.use_linear_in_transformer = shape(a + "proj_in.weight").size() == 2;
      }
    }
  }
  c.transformer_depth_middle = has_prefix("mid_block.attentions.0.") ? count("mid_block.attentions.0.transformer_blocks.", ".")
                                                                     : -1;
  if (set.has("add_embedding.linear_1.weight")) c.adm_in_channels = shape("add_embedding.linear_1.weight").at(1);
  unet::set_heads_from_structure(c);
  return c;
}

// load_controlnet_state_dict's diffusers branch: the UNet names (unet_to_diffusers), the zero convs
// (controlnet_down_blocks.N -> zero_convs.N.0), controlnet_mid_block -> middle_block_out.0 and the
// hint embedding (conv_in, blocks.K, conv_out -> input_hint_block.0, 2, ..., 14).
std::shared_ptr<const WeightSet> controlnet_from_diffusers(const WeightSet& set, const std::filesystem::path& path) {
  std::vector<std::pair<std::string, std::string>> names = unet_to_diffusers(diffusers_controlnet_config(set));
  for (const char* s : {".weight", ".bias"}) {
    names.emplace_back(std::string("controlnet_mid_block") + s, std::string("middle_block_out.0") + s);
    for (int64_t n = 0; set.has("controlnet_down_blocks." + std::to_string(n) + s); ++n)
      names.emplace_back("controlnet_down_blocks." + std::to_string(n) + s, "zero_convs." + std::to_string(n) + ".0" + s);
    names.emplace_back(std::string("controlnet_cond_embedding.conv_in") + s, std::string("input_hint_block.0") + s);
    int64_t k = 0;
    for (; set.has("controlnet_cond_embedding.blocks." + std::to_string(k) + s); ++k)
      names.emplace_back("controlnet_cond_embedding.blocks." + std::to_string(k) + s,
                         "input_hint_block." + std::to_string((k + 1) * 2) + s);
    names.emplace_back(std::string("controlnet_cond_embedding.conv_out") + s,
                       "input_hint_block." + std::to_string((k + 1) * 2) + s);
  }
  std::unordered_map<std::string, at::Tensor> out;
  size_t used = 0;
  for (const auto& [from, to] : names) {
    if (!set.has(from) || out.count(to)) continue;
    out[to] = set.raw(from);
    ++used;
  }
  if (set.has("control_add_embedding.linear_1.bias")) unsupported(path, "a union ControlNet (ControlNet++)");
  if (used < set.keys().size()) spdlog::warn("leftover keys: {} of {} in {}", set.keys().size() - used, set.keys().size(), path.string());
  return WeightSet::from_tensors(std::move(out));
}

}  // namespace

std::shared_ptr<const ControlNetwork> load_controlnet(const std::filesystem::path& path, const DiffusionModel* model) {
  std::shared_ptr<const WeightSet> set = load_weight_file(path);
  auto net = std::make_shared<ControlNetwork>();
  net->file = path.string();
  const std::string stem = path.stem().string();
  net->global_average_pooling = ends_with(stem, "_shuffle") || ends_with(stem, "_shuffle_fp16");

  if (set->has("after_proj_list.18.bias")) unsupported(path, "a HunyuanDiT ControlNet");
  if (set->has("lora_controlnet")) unsupported(path, "a Control-LoRA");
  if (set->has("controlnet_cond_embedding.conv_in.weight")) set = controlnet_from_diffusers(*set, path);
  if (set->has("controlnet_blocks.0.weight") || set->has("controlnet_blocks.0.linear.weight"))
    unsupported(path, "an SD3/Flux/Qwen-Image ControlNet");

  std::string prefix;
  if (set->has("control_model.zero_convs.0.0.weight")) {
    prefix = "control_model.";
  } else if (!set->has("zero_convs.0.0.weight")) {
    // load_t2i_adapter
    std::shared_ptr<const WeightSet> t2i = set;
    if (set->has("adapter.body.0.resnets.0.block1.weight")) t2i = t2i_from_diffusers(*set);
    if (t2i->has("backbone.0.0.weight") || t2i->has("backbone.10.blocks.0.weight"))
      unsupported(path, "a Stable Cascade ControlNet");
    if (!t2i->has("body.0.in_conv.weight") && !t2i->has("conv_in.weight"))
      throw ComfyError("RuntimeError", "ERROR: controlnet file is invalid and does not contain a valid controlnet "
                                       "model: " + path.string());
    net->kind = ControlNetwork::Kind::T2IAdapter;
    net->weights = Weights(t2i, "");
    net->adapter = detect_t2i_adapter_config(net->weights);
    return net;
  }

  if (!prefix.empty() && set->has("difference")) {
    // A diff ControlNet: its weights are differences to the model's UNet (added in the file dtype).
    if (model) {
      std::unordered_map<std::string, at::Tensor> added;
      for (const std::string& k : set->keys_with_prefix(prefix)) {
        if (!model->weights.has(k)) continue;
        at::Tensor cd = set->raw(prefix + k);
        added[prefix + k] = cd + model->weights(k, at::kFloat).to(cd.scalar_type());
      }
      set = set->with_tensors(std::move(added));
    } else {
      spdlog::warn("WARNING: Loaded a diff controlnet without a model. It will very likely not work.");
    }
  }
  net->kind = ControlNetwork::Kind::ControlNet;
  net->weights = Weights(set, prefix);
  try {
    net->controlnet = detect_controlnet_config(net->weights);
  } catch (const ComfyError& e) {
    throw ComfyError("RuntimeError", "ERROR: " + path.string() + " is not a ControlNet comfy.cpp can read: " + e.what());
  }
  return net;
}

std::string ControlNet::repr() const {
  return network_->kind == ControlNetwork::Kind::T2IAdapter ? "<comfy.controlnet.T2IAdapter object>"
                                                            : "<comfy.controlnet.ControlNet object>";
}

std::shared_ptr<const ControlNet> ControlNet::with_hint(const at::Tensor& hint, double strength, double start_percent,
                                                        double end_percent,
                                                        std::shared_ptr<const ControlNet> previous) const {
  auto c = std::make_shared<ControlNet>(network_);
  c->cond_hint_original_ = hint;
  c->strength_ = strength;
  c->start_percent_ = start_percent;
  c->end_percent_ = end_percent;
  c->previous_ = std::move(previous);
  return c;
}

void ControlNet::check_compatible(const DiffusionModel& model) const {
  for (const ControlNet* c = this; c; c = c->previous_.get()) {
    const ControlNetwork& n = *c->network_;
    if (n.kind != ControlNetwork::Kind::ControlNet) continue;
    const UNetConfig& u = n.controlnet.unet;
    if (u.adm_in_channels > 0 && model.unet.adm_in_channels == 0)
      throw ComfyError("ValueError", "ControlNet " + n.file + " is an SDXL-type ControlNet (it takes a " +
                                         std::to_string(u.adm_in_channels) + "-wide adm input y) and cannot be used "
                                         "with this " + model.family + " model: y is None, did you try using a "
                                         "controlnet for SDXL on SD1?");
    // (The latent channels are not compared: an inpainting UNet takes 9, its ControlNet the 4 of x.)
    if (u.context_dim != model.unet.context_dim)
      throw ComfyError("ValueError", "ControlNet " + n.file + " does not fit this " + model.family +
                                         " model: it takes text conditioning " + std::to_string(u.context_dim) +
                                         " wide, the model " + std::to_string(model.unet.context_dim));
  }
}

at::Tensor ControlNet::hint_for(const at::Tensor& x_noisy, int64_t batched_number) const {
  const ControlNetwork& n = *network_;
  if (!cond_hint_original_.defined())
    throw ComfyError("RuntimeError", "ControlNet " + n.file + " has no hint image (apply it with a ControlNetApply node)");
  const int64_t h = x_noisy.size(2) * n.compression_ratio, w = x_noisy.size(3) * n.compression_ratio;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (n.kind == ControlNetwork::Kind::T2IAdapter) {
    // scale_image_to: up to multiples of the unshuffle amount.
    const int64_t u = n.adapter.unshuffle_amount();
    const int64_t sw = (w + u - 1) / u * u, sh = (h + u - 1) / u * u;
    if (!cond_hint_.defined() || cond_hint_.size(2) != sh || cond_hint_.size(3) != sw) {
      cond_hint_ = common_upscale(cond_hint_original_, sw, sh, n.upscale_algorithm, "center").to(at::kFloat);
      if (n.adapter.input_channels() == 1 && cond_hint_.size(1) > 1) cond_hint_ = cond_hint_.mean(1, true);
    }
  } else if (!cond_hint_.defined() || cond_hint_.size(2) != h || cond_hint_.size(3) != w) {
    cond_hint_ = common_upscale(cond_hint_original_, w, h, n.upscale_algorithm, "center").to(at::kFloat);
  }
  at::Tensor hint = cond_hint_;
  if (x_noisy.size(0) != hint.size(0)) hint = broadcast_image_to(hint, x_noisy.size(0), batched_number);
  return hint;
}

UNetControl ControlNet::control_merge(UNetControl control, const std::optional<UNetControl>& prev) const {
  auto scale = [&](std::vector<at::Tensor>& list) {
    for (at::Tensor& x : list) {
      if (!x.defined()) continue;
      if (network_->global_average_pooling)
        x = x.mean({2, 3}, true).repeat({1, 1, x.size(2), x.size(3)});
      x = x * strength_;  // StrengthType.CONSTANT
    }
  };
  scale(control.input);
  scale(control.middle);
  scale(control.output);
  if (prev) {
    auto merge = [](std::vector<at::Tensor>& o, const std::vector<at::Tensor>& p) {
      for (size_t i = 0; i < p.size(); ++i) {
        if (i >= o.size())
          o.push_back(p[i]);
        else if (p[i].defined())
          o[i] = o[i].defined() ? p[i] + o[i] : p[i];
      }
    };
    merge(control.input, prev->input);
    merge(control.middle, prev->middle);
    merge(control.output, prev->output);
  }
  return control;
}

std::optional<UNetControl> ControlNet::get_control(const at::Tensor& x_noisy, const at::Tensor& sigma,
                                                   const ModelConds& conds, int64_t batched_number,
                                                   const ModelSampling& sampling) const {
  std::optional<UNetControl> prev;
  if (previous_) prev = previous_->get_control(x_noisy, sigma, conds, batched_number, sampling);

  // timestep_range from pre_run: sigmas compared in f32, as torch compares a tensor with a float.
  const float t0 = sigma[0].item<float>();
  if (t0 > static_cast<float>(sampling.percent_to_sigma(start_percent_)) ||
      t0 < static_cast<float>(sampling.percent_to_sigma(end_percent_)))
    return prev;

  const ControlNetwork& n = *network_;
  at::Tensor hint = hint_for(x_noisy, batched_number);
  if (n.kind == ControlNetwork::Kind::T2IAdapter) {
    UNetControl features;
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (!adapter_features_ || !adapter_input_.is_same(hint)) {
        adapter_features_ = t2i_adapter_forward(n.adapter, n.weights, hint);
        adapter_input_ = hint;
      }
      features = *adapter_features_;  // the tensors are replaced, never changed in place
    }
    return control_merge(std::move(features), prev);
  }

  if (!conds.c_crossattn.defined())
    throw ComfyError("RuntimeError", "ControlNet " + n.file + " needs the text conditioning (c_crossattn)");
  at::Tensor timestep = sampling.timestep(sigma).to(at::kFloat);
  at::Tensor x = sampling.calculate_input(sigma, x_noisy).to(at::kFloat);
  std::optional<at::Tensor> y;
  if (conds.y.defined()) y = conds.y.to(at::kFloat);
  UNetControl control = controlnet_forward(n.controlnet, n.weights, x, hint, timestep, conds.c_crossattn.to(at::kFloat), y);
  return control_merge(std::move(control), prev);
}

}  // namespace comfy
