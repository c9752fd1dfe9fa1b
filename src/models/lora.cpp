// Follows comfy/lora.py, comfy/weight_adapter/{lora,loha,lokr,glora,base}.py and
// comfy/sd.py load_lora_for_models (ComfyUI 0.8.0). Patches are computed in f32, as
// ModelPatcher.patch_weight_to_device does with lora_compute_dtype on the CPU.
#include "models/lora.h"

#include <spdlog/spdlog.h>

#include <functional>
#include <limits>
#include <map>
#include <set>

#include "core/error.h"
#include "models/checkpoint.h"
#include "models/clip_model.h"
#include "models/diffusion_model.h"

namespace comfy {

// ---------------------------------------------------------------------------------------------
// Key maps

void LoraKeyMap::set(const std::string& lora_key, const std::string& target) {
  auto it = index_.find(lora_key);
  if (it != index_.end()) {
    entries_[it->second].second = target;
    return;
  }
  index_.emplace(lora_key, entries_.size());
  entries_.emplace_back(lora_key, target);
}

const std::string* LoraKeyMap::find(const std::string& lora_key) const {
  auto it = index_.find(lora_key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool starts_with(const std::string& s, const std::string& head) { return s.compare(0, head.size(), head) == 0; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}
std::string dots_to_underscores(std::string s) { return replace_all(std::move(s), ".", "_"); }
std::string strip_weight(const std::string& k) { return k.substr(0, k.size() - std::string(".weight").size()); }

// comfy/utils.py UNET_MAP_RESNET, UNET_MAP_ATTENTIONS, TRANSFORMER_BLOCKS, UNET_MAP_BASIC.
const std::vector<std::pair<const char*, const char*>> kResnetMap = {
    {"in_layers.2.weight", "conv1.weight"},        {"in_layers.2.bias", "conv1.bias"},
    {"emb_layers.1.weight", "time_emb_proj.weight"}, {"emb_layers.1.bias", "time_emb_proj.bias"},
    {"out_layers.3.weight", "conv2.weight"},       {"out_layers.3.bias", "conv2.bias"},
    {"skip_connection.weight", "conv_shortcut.weight"}, {"skip_connection.bias", "conv_shortcut.bias"},
    {"in_layers.0.weight", "norm1.weight"},        {"in_layers.0.bias", "norm1.bias"},
    {"out_layers.0.weight", "norm2.weight"},       {"out_layers.0.bias", "norm2.bias"},
};
const std::vector<const char*> kAttentionMap = {"proj_in.weight", "proj_in.bias", "proj_out.weight",
                                                "proj_out.bias",  "norm.weight",  "norm.bias"};
const std::vector<const char*> kTransformerBlock = {
    "norm1.weight",          "norm1.bias",          "norm2.weight",          "norm2.bias",
    "norm3.weight",          "norm3.bias",          "attn1.to_q.weight",     "attn1.to_k.weight",
    "attn1.to_v.weight",     "attn1.to_out.0.weight", "attn1.to_out.0.bias", "attn2.to_q.weight",
    "attn2.to_k.weight",     "attn2.to_v.weight",   "attn2.to_out.0.weight", "attn2.to_out.0.bias",
    "ff.net.0.proj.weight",  "ff.net.0.proj.bias",  "ff.net.2.weight",       "ff.net.2.bias",
};
const std::vector<std::pair<const char*, const char*>> kBasicMap = {  // (ComfyUI, diffusers)
    {"label_emb.0.0.weight", "class_embedding.linear_1.weight"}, {"label_emb.0.0.bias", "class_embedding.linear_1.bias"},
    {"label_emb.0.2.weight", "class_embedding.linear_2.weight"}, {"label_emb.0.2.bias", "class_embedding.linear_2.bias"},
    {"label_emb.0.0.weight", "add_embedding.linear_1.weight"},   {"label_emb.0.0.bias", "add_embedding.linear_1.bias"},
    {"label_emb.0.2.weight", "add_embedding.linear_2.weight"},   {"label_emb.0.2.bias", "add_embedding.linear_2.bias"},
    {"input_blocks.0.0.weight", "conv_in.weight"},               {"input_blocks.0.0.bias", "conv_in.bias"},
    {"out.0.weight", "conv_norm_out.weight"},                    {"out.0.bias", "conv_norm_out.bias"},
    {"out.2.weight", "conv_out.weight"},                         {"out.2.bias", "conv_out.bias"},
    {"time_embed.0.weight", "time_embedding.linear_1.weight"},   {"time_embed.0.bias", "time_embedding.linear_1.bias"},
    {"time_embed.2.weight", "time_embedding.linear_2.weight"},   {"time_embed.2.bias", "time_embedding.linear_2.bias"},
};

// comfy/lora.py LORA_CLIP_MAP
const std::vector<std::pair<const char*, const char*>> kClipMap = {
    {"mlp.fc1", "mlp_fc1"},
    {"mlp.fc2", "mlp_fc2"},
    {"self_attn.k_proj", "self_attn_k_proj"},
    {"self_attn.q_proj", "self_attn_q_proj"},
    {"self_attn.v_proj", "self_attn_v_proj"},
    {"self_attn.out_proj", "self_attn_out_proj"},
};

}  // namespace

std::vector<std::pair<std::string, std::string>> unet_to_diffusers(const UNetConfig& config) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](std::string diffusers, std::string comfy) { out.emplace_back(std::move(diffusers), std::move(comfy)); };
  const auto s = [](auto v) { return std::to_string(v); };
  const size_t num_blocks = config.channel_mult.size();
  std::vector<int64_t> depth = config.transformer_depth;
  std::vector<int64_t> depth_out = config.transformer_depth_output;
  size_t depth_pos = 0;
  auto take_front = [&]() -> int64_t { return depth_pos < depth.size() ? depth[depth_pos++] : 0; };
  auto take_back = [&]() -> int64_t {
    if (depth_out.empty()) return 0;
    int64_t v = depth_out.back();
    depth_out.pop_back();
    return v;
  };

  for (size_t x = 0; x < num_blocks; ++x) {
    const int64_t nrb = x < config.num_res_blocks.size() ? config.num_res_blocks[x] : 0;
    int64_t n = 1 + (nrb + 1) * static_cast<int64_t>(x);
    for (int64_t i = 0; i < nrb; ++i) {
      for (const auto& [b, d] : kResnetMap)
        add("down_blocks." + s(x) + ".resnets." + s(i) + "." + d, "input_blocks." + s(n) + ".0." + b);
      const int64_t num_transformers = take_front();
      if (num_transformers > 0) {
        for (const char* b : kAttentionMap)
          add("down_blocks." + s(x) + ".attentions." + s(i) + "." + b, "input_blocks." + s(n) + ".1." + b);
        for (int64_t t = 0; t < num_transformers; ++t)
          for (const char* b : kTransformerBlock)
            add("down_blocks." + s(x) + ".attentions." + s(i) + ".transformer_blocks." + s(t) + "." + b,
                "input_blocks." + s(n) + ".1.transformer_blocks." + s(t) + "." + b);
      }
      ++n;
    }
    for (const char* k : {"weight", "bias"})
      add("down_blocks." + s(x) + ".downsamplers.0.conv." + k, "input_blocks." + s(n) + ".0.op." + k);
  }

  for (const char* b : kAttentionMap) add(std::string("mid_block.attentions.0.") + b, std::string("middle_block.1.") + b);
  for (int64_t t = 0; t < config.transformer_depth_middle; ++t)
    for (const char* b : kTransformerBlock)
      add("mid_block.attentions.0.transformer_blocks." + s(t) + "." + b, "middle_block.1.transformer_blocks." + s(t) + "." + b);
  for (int i = 0; i < 2; ++i)
    for (const auto& [b, d] : kResnetMap)
      add("mid_block.resnets." + s(i) + "." + d, "middle_block." + s(i * 2) + "." + b);

  std::vector<int64_t> nrb_rev(config.num_res_blocks.rbegin(), config.num_res_blocks.rend());
  for (size_t x = 0; x < num_blocks; ++x) {
    const int64_t nrb = x < nrb_rev.size() ? nrb_rev[x] : 0;
    int64_t n = (nrb + 1) * static_cast<int64_t>(x);
    const int64_t l = nrb + 1;
    for (int64_t i = 0; i < l; ++i) {
      int c = 0;
      for (const auto& [b, d] : kResnetMap)
        add("up_blocks." + s(x) + ".resnets." + s(i) + "." + d, "output_blocks." + s(n) + ".0." + b);
      ++c;
      const int64_t num_transformers = take_back();
      if (num_transformers > 0) {
        ++c;
        for (const char* b : kAttentionMap)
          add("up_blocks." + s(x) + ".attentions." + s(i) + "." + b, "output_blocks." + s(n) + ".1." + b);
        for (int64_t t = 0; t < num_transformers; ++t)
          for (const char* b : kTransformerBlock)
            add("up_blocks." + s(x) + ".attentions." + s(i) + ".transformer_blocks." + s(t) + "." + b,
                "output_blocks." + s(n) + ".1.transformer_blocks." + s(t) + "." + b);
      }
      if (i == l - 1)
        for (const char* k : {"weight", "bias"})
          add("up_blocks." + s(x) + ".upsamplers.0.conv." + k, "output_blocks." + s(n) + "." + s(c) + ".conv." + k);
      ++n;
    }
  }
  for (const auto& [comfy_name, diffusers] : kBasicMap) add(diffusers, comfy_name);
  return out;
}

void add_unet_lora_keys(LoraKeyMap& map, const UNetConfig& config, const std::vector<std::string>& unet_keys) {
  for (const std::string& rest : unet_keys) {
    const std::string k = "diffusion_model." + rest;
    if (ends_with(k, ".weight")) {
      map.set("lora_unet_" + dots_to_underscores(strip_weight(rest)), k);
      map.set(strip_weight(k), k);  // generic format
    } else {
      map.set(k, k);
    }
  }
  // diffusers names (Python dict semantics: a diffusers name listed twice keeps the last target)
  for (const auto& [diffusers, comfy_name] : unet_to_diffusers(config)) {
    if (!ends_with(diffusers, ".weight")) continue;
    const std::string unet_key = "diffusion_model." + comfy_name;
    const std::string base = strip_weight(diffusers);
    const std::string key_lora = dots_to_underscores(base);
    map.set("lora_unet_" + key_lora, unet_key);
    map.set("lycoris_" + key_lora, unet_key);  // SimpleTuner LyCORIS
    for (const char* p : {"", "unet."}) {
      std::string k = p + replace_all(base, ".to_", ".processor.to_");
      if (ends_with(k, ".to_out.0")) k = k.substr(0, k.size() - 2);
      map.set(k, unet_key);
    }
  }
}

void add_clip_lora_keys(LoraKeyMap& map, const std::vector<std::string>& clip_keys) {
  const std::set<std::string> sdk(clip_keys.begin(), clip_keys.end());
  for (const std::string& k : clip_keys)
    if (ends_with(k, ".weight")) map.set("text_encoders." + strip_weight(k), k);  // generic format

  bool clip_l_present = false;
  for (int b = 0; b < 32; ++b) {
    const std::string layer = std::to_string(b);
    for (const auto& [c, lc] : kClipMap) {
      const std::string te = "text_model_encoder_layers_" + layer + "_" + lc;
      const std::string diffusers = "text_encoder.text_model.encoder.layers." + layer + "." + c;
      std::string k = "clip_h.transformer.text_model.encoder.layers." + layer + "." + c + ".weight";
      if (sdk.count(k)) {
        map.set("lora_te_" + te, k);
        map.set("lora_te1_" + te, k);
        map.set(diffusers, k);
      }
      k = "clip_l.transformer.text_model.encoder.layers." + layer + "." + c + ".weight";
      if (sdk.count(k)) {
        map.set("lora_te_" + te, k);
        map.set("lora_te1_" + te, k);  // SDXL base
        clip_l_present = true;
        map.set(diffusers, k);
      }
      k = "clip_g.transformer.text_model.encoder.layers." + layer + "." + c + ".weight";
      if (sdk.count(k)) {
        if (clip_l_present) {
          map.set("lora_te2_" + te, k);
          map.set("text_encoder_2.text_model.encoder.layers." + layer + "." + c, k);
        } else {
          map.set("lora_te_" + te, k);
          map.set(diffusers, k);
          map.set("lora_prior_te_" + te, k);
        }
      }
    }
  }
  if (sdk.count("clip_g.transformer.text_projection.weight")) {
    map.set("lora_prior_te_text_projection", "clip_g.transformer.text_projection.weight");
    map.set("lora_te2_text_projection", "clip_g.transformer.text_projection.weight");
  }
  if (sdk.count("clip_l.transformer.text_projection.weight"))
    map.set("lora_te1_text_projection", "clip_l.transformer.text_projection.weight");
}

// ---------------------------------------------------------------------------------------------
// Patch math (f32)

namespace {

at::Tensor f32(const at::Tensor& t) { return t.to(at::kFloat); }

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

at::Tensor pad_to_shape(const at::Tensor& w, const std::vector<int64_t>& shape) {
  if (shape.size() != static_cast<size_t>(w.dim()))
    throw ComfyError("ValueError", "The new shape must have the same number of dimensions as the original tensor");
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] < w.size(static_cast<int64_t>(i)))
      throw ComfyError("ValueError", "The new shape must be larger than the original tensor in all dimensions");
  at::Tensor out = at::zeros(shape, w.options());
  at::Tensor view = out;
  for (int64_t d = 0; d < w.dim(); ++d) view = view.narrow(d, 0, w.size(d));
  view.copy_(w);
  return out;
}

// weight_adapter/base.py weight_decompose (DoRA). As in ComfyUI 0.8, the norm on the output axis
// is taken of the unpatched weight.
at::Tensor weight_decompose(const at::Tensor& dora_scale_in, at::Tensor weight, at::Tensor lora_diff, double alpha,
                            double strength) {
  at::Tensor dora_scale = f32(dora_scale_in);
  lora_diff.mul_(alpha);
  at::Tensor weight_calc = weight + lora_diff;
  const bool on_output_axis = dora_scale.size(0) == weight_calc.size(0);
  at::Tensor weight_norm;
  if (on_output_axis) {
    std::vector<int64_t> shape(weight.dim(), 1);
    shape[0] = weight.size(0);
    weight_norm = weight.reshape({weight.size(0), -1}).norm(2, {1}, true).reshape(shape);
  } else {
    std::vector<int64_t> shape(weight_calc.dim(), 1);
    shape[0] = weight_calc.size(1);
    weight_norm = weight_calc.transpose(0, 1)
                      .reshape({weight_calc.size(1), -1})
                      .norm(2, {1}, true)
                      .reshape(shape)
                      .transpose(0, 1);
  }
  weight_norm = weight_norm + static_cast<double>(std::numeric_limits<float>::epsilon());
  weight_calc.mul_(dora_scale / weight_norm);
  if (strength != 1.0) {
    weight_calc.sub_(weight);
    weight.add_(weight_calc * strength);
  } else {
    weight.copy_(weight_calc);
  }
  return weight;
}

// weight += strength * alpha * diff, or DoRA.
at::Tensor add_delta(const LoraPatch& p, at::Tensor weight, const at::Tensor& diff, double alpha, double strength) {
  if (p.dora_scale.defined()) return weight_decompose(p.dora_scale, std::move(weight), diff, alpha, strength);
  weight.add_(diff * (strength * alpha));
  return weight;
}

// 'i j k l, j r, i p -> p r k l' (Tucker / CP factors of LoHa, LoKr)
at::Tensor cp_weight(const at::Tensor& t, const at::Tensor& wb, const at::Tensor& wa) {
  return at::einsum("ijkl,jr,ip->prkl", {f32(t), f32(wb), f32(wa)});
}

at::Tensor apply_lora(const LoraPatch& p, at::Tensor weight, double strength) {
  at::Tensor up = f32(p.t[0]);
  at::Tensor down = f32(p.t[1]);
  if (p.reshape) weight = pad_to_shape(weight, *p.reshape);
  const double alpha = p.alpha ? *p.alpha / static_cast<double>(down.size(0)) : 1.0;
  if (p.t.size() > 2 && p.t[2].defined()) {  // LoCon mid (CP decomposition of a conv)
    at::Tensor mid = f32(p.t[2]);
    std::vector<int64_t> final_shape = {down.size(1), down.size(0), mid.size(2), mid.size(3)};
    down = at::mm(down.transpose(0, 1).flatten(1), mid.transpose(0, 1).flatten(1)).reshape(final_shape).transpose(0, 1);
  }
  at::Tensor diff = at::mm(up.flatten(1), down.flatten(1)).reshape(weight.sizes());
  return add_delta(p, std::move(weight), diff, alpha, strength);
}

at::Tensor apply_loha(const LoraPatch& p, at::Tensor weight, double strength) {
  const at::Tensor &w1a = p.t[0], &w1b = p.t[1], &w2a = p.t[2], &w2b = p.t[3];
  const double alpha = p.alpha ? *p.alpha / static_cast<double>(w1b.size(0)) : 1.0;
  at::Tensor m1, m2;
  if (p.t[4].defined()) {
    m1 = cp_weight(p.t[4], w1b, w1a);
    m2 = cp_weight(p.t[5], w2b, w2a);
  } else {
    m1 = at::mm(f32(w1a), f32(w1b));
    m2 = at::mm(f32(w2a), f32(w2b));
  }
  at::Tensor diff = (m1 * m2).reshape(weight.sizes());
  return add_delta(p, std::move(weight), diff, alpha, strength);
}

at::Tensor apply_lokr(const LoraPatch& p, at::Tensor weight, double strength) {
  at::Tensor w1 = p.t[0], w2 = p.t[1];
  const at::Tensor &w1_a = p.t[2], &w1_b = p.t[3], &w2_a = p.t[4], &w2_b = p.t[5], &t2 = p.t[6];
  std::optional<int64_t> dim;
  if (!w1.defined()) {
    dim = w1_b.size(0);
    w1 = at::mm(f32(w1_a), f32(w1_b));
  } else {
    w1 = f32(w1);
  }
  if (!w2.defined()) {
    dim = w2_b.size(0);
    w2 = t2.defined() ? cp_weight(t2, w2_b, w2_a) : at::mm(f32(w2_a), f32(w2_b));
  } else {
    w2 = f32(w2);
  }
  if (w2.dim() == 4) w1 = w1.unsqueeze(2).unsqueeze(2);
  const double alpha = (p.alpha && dim) ? *p.alpha / static_cast<double>(*dim) : 1.0;
  at::Tensor diff = at::kron(w1, w2).reshape(weight.sizes());
  return add_delta(p, std::move(weight), diff, alpha, strength);
}

at::Tensor apply_glora(const LoraPatch& p, at::Tensor weight, double strength) {
  const at::Tensor &v0 = p.t[0], &v1 = p.t[1], &v2 = p.t[2], &v3 = p.t[3];
  bool old_glora = false;
  int64_t rank = 0;
  if (v3.size(1) == v2.size(0) && v2.size(0) == v0.size(0) && v0.size(0) == v1.size(1)) {
    rank = v0.size(0);
    old_glora = true;
  }
  if (v3.size(0) == v2.size(1) && v2.size(1) == v0.size(1) && v0.size(1) == v1.size(0)) {
    if (!(old_glora && v1.size(0) == weight.size(0) && weight.size(0) == weight.size(1))) {
      old_glora = false;
      rank = v1.size(0);
    }
  }
  at::Tensor a1 = f32(v0.flatten(1)), a2 = f32(v1.flatten(1)), b1 = f32(v2.flatten(1)), b2 = f32(v3.flatten(1));
  double alpha = 1.0;
  if (p.alpha) {
    if (rank == 0) throw ComfyError("NameError", "GLoRA factors of unrecognised shapes");
    alpha = *p.alpha / static_cast<double>(rank);
  }
  at::Tensor diff;
  if (old_glora) {
    diff = (at::mm(b2, b1) + at::mm(at::mm(weight.flatten(1), a2), a1)).reshape(weight.sizes());
  } else {
    if (weight.dim() > 2)
      diff = at::einsum("oi...,ij->oj...", {at::einsum("oi...,ij->oj...", {weight, a1}), a2}).reshape(weight.sizes());
    else
      diff = at::mm(at::mm(weight, a1), a2).reshape(weight.sizes());
    diff += at::mm(b1, b2).reshape(weight.sizes());
  }
  return add_delta(p, std::move(weight), diff, alpha, strength);
}

const char* adapter_name(LoraPatch::Kind k) {
  switch (k) {
    case LoraPatch::Kind::LoRA: return "lora";
    case LoraPatch::Kind::LoHa: return "loha";
    case LoraPatch::Kind::LoKr: return "lokr";
    case LoraPatch::Kind::GLoRA: return "glora";
    case LoraPatch::Kind::Diff: return "diff";
    case LoraPatch::Kind::Set: return "set";
  }
  return "?";
}

}  // namespace

at::Tensor LoraPatch::apply(at::Tensor weight, double strength, const std::string& key) const {
  if (kind == Kind::Diff) {
    if (strength == 0.0) return weight;
    const at::Tensor& diff = t[0];
    if (!diff.sizes().equals(weight.sizes())) {
      spdlog::warn("WARNING SHAPE MISMATCH {} WEIGHT NOT MERGED {} != {}", key, shape_str(diff.sizes()),
                   shape_str(weight.sizes()));
      return weight;
    }
    weight.add_(f32(diff) * strength);
    return weight;
  }
  if (kind == Kind::Set) {
    weight.copy_(t[0]);
    return weight;
  }
  // A weight adapter: ComfyUI logs a failure ("ERROR lora KEY message") and keeps the weight. Every
  // failure (a shape that does not fit) comes before the weight is written, so `weight` is intact.
  try {
    switch (kind) {
      case Kind::LoRA: return apply_lora(*this, weight, strength);
      case Kind::LoHa: return apply_loha(*this, weight, strength);
      case Kind::LoKr: return apply_lokr(*this, weight, strength);
      case Kind::GLoRA: return apply_glora(*this, weight, strength);
      default: break;
    }
  } catch (const c10::Error& e) {
    spdlog::error("ERROR {} {} {}", adapter_name(kind), key, e.what_without_backtrace());
  } catch (const std::exception& e) {
    spdlog::error("ERROR {} {} {}", adapter_name(kind), key, e.what());
  }
  return weight;
}

// ---------------------------------------------------------------------------------------------
// Parsing a file (load_lora)

namespace {

struct LoraReader {
  const std::shared_ptr<const WeightSet>& lora;
  const std::string& file_name;
  std::set<std::string> loaded;

  bool has(const std::string& k) const { return lora->has(k); }
  at::Tensor get(const std::string& k) {
    if (!lora->has(k))
      throw ComfyError("KeyError", "LoRA file '" + file_name + "' has '" + k + "' without its partner tensor");
    loaded.insert(k);
    return lora->raw(k);
  }
  at::Tensor get_if(const std::string& k) { return has(k) ? get(k) : at::Tensor(); }
};

std::optional<LoraPatch> load_lora_adapter(LoraReader& r, const std::string& x) {
  struct Form {
    const char* up;
    const char* down;
    bool mid;
  };
  static const Form forms[] = {
      {".lora_up.weight", ".lora_down.weight", true},  // kohya / LyCORIS
      {"_lora.up.weight", "_lora.down.weight", false},  // diffusers
      {".lora_B.weight", ".lora_A.weight", false},      // diffusers 2 / PEFT
      {".lora.up.weight", ".lora.down.weight", false},  // diffusers 3
      {".lora_B", ".lora_A", false},                    // Mochi
      {".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight", false},  // transformers
      {".lora_B.default.weight", ".lora_A.default.weight", false},                // Qwen
  };
  for (const Form& f : forms) {
    if (!r.has(x + f.up)) continue;
    LoraPatch p;
    p.kind = LoraPatch::Kind::LoRA;
    at::Tensor mid;
    if (f.mid) mid = r.get_if(x + ".lora_mid.weight");
    const std::string reshape_name = x + ".reshape_weight";
    if (r.has(reshape_name)) {
      at::Tensor rs = r.lora->raw(reshape_name).to(at::kLong).flatten();
      std::vector<int64_t> shape(rs.data_ptr<int64_t>(), rs.data_ptr<int64_t>() + rs.numel());
      p.reshape = shape;
      r.loaded.insert(reshape_name);
    }
    at::Tensor up = r.get(x + f.up);
    at::Tensor down = r.get(x + f.down);
    p.t = {up, down, mid};
    return p;
  }
  return std::nullopt;
}

std::optional<LoraPatch> load_loha_adapter(LoraReader& r, const std::string& x) {
  if (!r.has(x + ".hada_w1_a")) return std::nullopt;
  LoraPatch p;
  p.kind = LoraPatch::Kind::LoHa;
  at::Tensor t1, t2;
  if (r.has(x + ".hada_t1")) {
    t1 = r.get(x + ".hada_t1");
    t2 = r.get(x + ".hada_t2");
  }
  p.t = {r.get(x + ".hada_w1_a"), r.get(x + ".hada_w1_b"), r.get(x + ".hada_w2_a"), r.get(x + ".hada_w2_b"), t1, t2};
  return p;
}

std::optional<LoraPatch> load_lokr_adapter(LoraReader& r, const std::string& x) {
  at::Tensor w1 = r.get_if(x + ".lokr_w1"), w2 = r.get_if(x + ".lokr_w2");
  at::Tensor w1_a = r.get_if(x + ".lokr_w1_a"), w1_b = r.get_if(x + ".lokr_w1_b");
  at::Tensor w2_a = r.get_if(x + ".lokr_w2_a"), w2_b = r.get_if(x + ".lokr_w2_b");
  at::Tensor t2 = r.get_if(x + ".lokr_t2");
  if (!w1.defined() && !w2.defined() && !w1_a.defined() && !w2_a.defined()) return std::nullopt;
  if ((!w1.defined() && !w1_b.defined()) || (!w2.defined() && (!w2_a.defined() || !w2_b.defined())))
    throw ComfyError("KeyError", "LoRA file '" + r.file_name + "': LoKr module '" + x + "' is missing a factor");
  LoraPatch p;
  p.kind = LoraPatch::Kind::LoKr;
  p.t = {w1, w2, w1_a, w1_b, w2_a, w2_b, t2};
  return p;
}

std::optional<LoraPatch> load_glora_adapter(LoraReader& r, const std::string& x) {
  if (!r.has(x + ".a1.weight")) return std::nullopt;
  LoraPatch p;
  p.kind = LoraPatch::Kind::GLoRA;
  p.t = {r.get(x + ".a1.weight"), r.get(x + ".a2.weight"), r.get(x + ".b1.weight"), r.get(x + ".b2.weight")};
  return p;
}

LoraPatch tensor_patch(LoraPatch::Kind kind, at::Tensor t) {
  LoraPatch p;
  p.kind = kind;
  p.t = {std::move(t)};
  return p;
}

std::string bias_of(const std::string& weight_key) {
  return (ends_with(weight_key, ".weight") ? strip_weight(weight_key) : weight_key.substr(0, weight_key.size() >= 7 ? weight_key.size() - 7 : 0)) + ".bias";
}

}  // namespace

ParsedLora parse_lora(const std::shared_ptr<const WeightSet>& lora, const LoraKeyMap& map, const std::string& file_name,
                      bool log_missing) {
  LoraReader r{lora, file_name, {}};
  // target -> patch, in the order the targets were first set (a Python dict)
  std::vector<std::pair<std::string, LoraPatch>> patches;
  std::unordered_map<std::string, size_t> index;
  auto put = [&](const std::string& target, LoraPatch p) {
    p.source = lora;
    auto it = index.find(target);
    if (it != index.end()) {
      patches[it->second].second = std::move(p);
      return;
    }
    index.emplace(target, patches.size());
    patches.emplace_back(target, std::move(p));
  };

  for (const auto& [x, target] : map.entries()) {
    std::optional<double> alpha;
    const std::string alpha_name = x + ".alpha";
    if (lora->has(alpha_name)) {
      at::Tensor a = lora->raw(alpha_name);
      if (a.numel() != 1)
        throw ComfyError("RuntimeError", "LoRA file '" + file_name + "': '" + alpha_name + "' is not a single number");
      alpha = a.to(at::kDouble).item<double>();
      r.loaded.insert(alpha_name);
    }
    at::Tensor dora_scale = r.get_if(x + ".dora_scale");

    // Every adapter type is tried; the last that matches wins (ComfyUI's loop does the same).
    using Loader = std::optional<LoraPatch> (*)(LoraReader&, const std::string&);
    for (Loader load : {Loader(load_lora_adapter), Loader(load_loha_adapter), Loader(load_lokr_adapter),
                        Loader(load_glora_adapter)}) {
      std::optional<LoraPatch> p = load(r, x);
      if (!p) continue;
      p->alpha = alpha;
      p->dora_scale = dora_scale;
      put(target, std::move(*p));
    }

    if (lora->has(x + ".w_norm")) {
      put(target, tensor_patch(LoraPatch::Kind::Diff, r.get(x + ".w_norm")));
      if (lora->has(x + ".b_norm")) put(bias_of(target), tensor_patch(LoraPatch::Kind::Diff, r.get(x + ".b_norm")));
    }
    if (lora->has(x + ".diff")) put(target, tensor_patch(LoraPatch::Kind::Diff, r.get(x + ".diff")));
    if (lora->has(x + ".diff_b")) put(bias_of(target), tensor_patch(LoraPatch::Kind::Diff, r.get(x + ".diff_b")));
    if (lora->has(x + ".set_weight")) put(target, tensor_patch(LoraPatch::Kind::Set, r.get(x + ".set_weight")));
  }

  ParsedLora out;
  out.patches = std::move(patches);
  for (const std::string& k : lora->keys()) {
    if (r.loaded.count(k)) continue;
    out.not_loaded.push_back(k);
    if (log_missing) spdlog::warn("lora key not loaded: {}", k);
  }
  return out;
}

std::shared_ptr<const WeightSet> load_lora_file(const std::filesystem::path& path) {
  try {
    return load_weight_file(path);
  } catch (const ComfyError&) {
    throw;
  } catch (const std::exception& e) {
    throw ComfyError("RuntimeError", "cannot read LoRA file '" + path.string() + "': " + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Applying (load_lora_for_models)

namespace {

// The patches whose targets are weights of `set` (names mapped by `to_set`), as WeightPatch
// layers; returns the targets it took.
std::map<std::string, std::vector<WeightPatch>> patches_for(const ParsedLora& parsed, const WeightSet& set,
                                                            const std::function<std::optional<std::string>(const std::string&)>& to_set,
                                                            double strength, std::set<std::string>& taken) {
  std::map<std::string, std::vector<WeightPatch>> out;
  for (const auto& [target, patch] : parsed.patches) {
    std::optional<std::string> key = to_set(target);
    if (!key || !set.has(*key)) continue;
    taken.insert(target);
    auto shared = std::make_shared<const LoraPatch>(patch);
    const std::string name = target;
    out[*key].push_back(WeightPatch{[shared, strength, name](at::Tensor w) { return shared->apply(std::move(w), strength, name); }});
  }
  return out;
}

}  // namespace

LoraResult load_lora_for_models(const std::shared_ptr<const DiffusionModel>& model,
                                const std::shared_ptr<const ClipModel>& clip,
                                const std::shared_ptr<const WeightSet>& lora, double strength_model,
                                double strength_clip, const std::string& file_name) {
  LoraKeyMap map;
  if (model) add_unet_lora_keys(map, model->unet, model->weights.keys());
  if (clip) add_clip_lora_keys(map, clip->weights()->keys());
  ParsedLora parsed = parse_lora(lora, map, file_name);

  LoraResult result;
  result.not_loaded = parsed.not_loaded;
  std::set<std::string> taken;
  if (model) {
    const std::string prefix = model->weights.prefix;
    auto to_set = [&](const std::string& target) -> std::optional<std::string> {
      const std::string head = "diffusion_model.";
      if (!starts_with(target, head)) return std::nullopt;
      return prefix + target.substr(head.size());
    };
    auto patches = patches_for(parsed, *model->weights.set, to_set, strength_model, taken);
    result.model_patched = patches.size();
    std::shared_ptr<const WeightSet> set = model->weights.set;
    // ComfyUI keeps the UNet in f32 on the CPU: a patched weight is not rounded back to the file's
    // dtype.
    if (!set->patch_dtype()) set = set->with_patch_dtype(at::kFloat);
    result.model = model->with_weights(Weights(set->with_patches(std::move(patches)), prefix));
  }
  if (clip) {
    auto to_set = [](const std::string& target) -> std::optional<std::string> { return target; };
    auto patches = patches_for(parsed, *clip->weights(), to_set, strength_clip, taken);
    result.clip_patched = patches.size();
    result.clip = clip->with_weights(clip->weights()->with_patches(std::move(patches)));
  }
  for (const auto& [target, _] : parsed.patches)
    if (!taken.count(target)) spdlog::warn("NOT LOADED {}", target);
  if (taken.empty())
    spdlog::warn("LoRA '{}' patched no weight: none of its {} keys names a weight of this {} (is it a LoRA for "
                 "another model family?)",
                 file_name, lora->keys().size(), clip ? "model or CLIP" : "model");
  return result;
}

}  // namespace comfy
