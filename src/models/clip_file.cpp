#include "models/clip_file.h"

#include <array>
#include <map>
#include <unordered_map>

#include "core/error.h"

namespace comfy {

namespace {

bool starts_with(const std::string& s, const std::string& head) { return s.compare(0, head.size(), head) == 0; }
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Where the text-encoder keys of a file may sit (the first is ComfyUI's own layout).
const char* const kPrefixes[] = {"",
                                 "cond_stage_model.transformer.",
                                 "transformer.",
                                 "clip_l.transformer.",
                                 "clip_h.transformer.",
                                 "text_encoder.",
                                 "cond_stage_model.model.",
                                 "conditioner.embedders.0.model.",
                                 "cond_stage_model."};

// What a set without text-encoder keys looks like, for the error message.
std::string looks_like(const WeightSet& set) {
  std::vector<std::string> keys = set.keys();
  if (keys.empty()) return "an empty file";
  auto any = [&](const std::string& part) {
    for (const auto& k : keys)
      if (k.find(part) != std::string::npos) return true;
    return false;
  };
  if (any("lora_") || any(".lora.") || any("lora_A") || any("hada_") || any("lokr_")) return "a LoRA";
  if (set.has("model.diffusion_model.input_blocks.0.0.weight"))
    return "a whole checkpoint without a text encoder (use CheckpointLoaderSimple)";
  if (set.has("input_blocks.0.0.weight") || any("double_blocks.") || any("joint_blocks."))
    return "a diffusion model (use UNETLoader)";
  if (set.has("encoder.conv_in.weight") || set.has("decoder.conv_in.weight") || any("first_stage_model."))
    return "a VAE (use VAELoader)";
  if (any("taesd_") || set.has("decoder.layers.0.weight")) return "a TAESD VAE (use VAELoader)";
  if (any("model.layers.0.")) return "an LLM text encoder (Llama / Gemma / Qwen)";
  return "not a text encoder (first key: '" + keys.front() + "')";
}

}  // namespace

TextEncoderFile read_text_encoder(const std::shared_ptr<const WeightSet>& set) {
  TextEncoderFile out;
  if (!set) throw ComfyError("ValueError", "read_text_encoder: no weights");
  std::unordered_map<std::string, at::Tensor> hf;
  bool found = false;
  for (const char* p : kPrefixes) {
    const std::string prefix = p;
    if (set->has(prefix + "text_model.encoder.layers.0.mlp.fc1.weight")) {
      for (const std::string& k : set->keys_with_prefix(prefix + "text_model."))
        hf["text_model." + k] = set->raw(prefix + "text_model." + k);
      if (set->has(prefix + "text_projection.weight"))
        hf["text_projection.weight"] = set->raw(prefix + "text_projection.weight");
      else if (set->has(prefix + "text_projection"))  // old CLIPSave files: [in, out]
        hf["text_projection.weight"] = set->raw(prefix + "text_projection").t();
      if (set->has(prefix + "logit_scale")) hf["logit_scale"] = set->raw(prefix + "logit_scale");
      out.prefix = prefix;
      found = true;
      break;
    }
    if (set->has(prefix + "transformer.resblocks.0.ln_1.weight")) {
      auto converted = openclip_to_hf(*set, prefix, "");
      for (const std::string& k : converted->keys()) hf[k] = converted->raw(k);
      if (set->has(prefix + "logit_scale")) hf["logit_scale"] = set->raw(prefix + "logit_scale");
      out.prefix = prefix;
      out.open_clip_layout = true;
      found = true;
      break;
    }
  }
  if (!found) {
    if (set->has("encoder.block.0.layer.0.SelfAttention.k.weight")) {
      out.kind = TextEncoderKind::T5;
      out.what = "T5";
    } else {
      out.what = looks_like(*set);
    }
    return out;
  }
  auto has_layer = [&](int n) { return hf.count("text_model.encoder.layers." + std::to_string(n) + ".mlp.fc1.weight") != 0; };
  if (has_layer(30)) {
    out.kind = TextEncoderKind::ClipG;
    out.what = "CLIP-G (SDXL / SD3 / Stable Cascade)";
  } else if (has_layer(22)) {
    out.kind = TextEncoderKind::ClipH;
    out.what = "OpenCLIP-H (SD2.x)";
  } else {
    out.kind = TextEncoderKind::ClipL;
    out.what = "CLIP-L (SD1.x)";
  }
  out.weights = WeightSet::from_tensors(std::move(hf));
  return out;
}

std::shared_ptr<const ClipModel> make_clip_from_file(const TextEncoderFile& file, const std::filesystem::path& path,
                                                     const ClipLoadOptions& options) {
  switch (file.kind) {
    case TextEncoderKind::Other:
      throw ComfyError("ValueError", "cannot load " + path.string() + " as a CLIP text encoder: it looks like " +
                                         file.what);
    case TextEncoderKind::T5:
    case TextEncoderKind::ClipG:
      throw ComfyError("ValueError", path.string() + " is a " + file.what +
                                         " text encoder; that family is not supported yet (supported: SD1.x CLIP-L, "
                                         "SD2.x OpenCLIP-H)");
    default:
      break;
  }
  // CLIP-H files are SD2's encoder; so are OpenCLIP-layout files of any depth (no SD1 CLIP-L file
  // is in that layout, and tiny test models have few layers).
  const bool sd2 = file.kind == TextEncoderKind::ClipH || file.open_clip_layout;
  ClipModel::Spec spec = clip_spec_for_family(sd2 ? "SD20" : "SD15");
  const std::string root = spec.name + ".";
  std::unordered_map<std::string, at::Tensor> tensors;
  for (const std::string& k : file.weights->keys()) {
    at::Tensor t = file.weights->raw(k);
    const std::string name = k == "logit_scale" ? root + k : root + "transformer." + k;
    // Text encoders are kept in fp16 on the CPU (text_encoder_dtype); logit_scale stays f32.
    if (k != "logit_scale" && at::isFloatingType(t.scalar_type()) && t.scalar_type() != at::kHalf) t = t.to(at::kHalf);
    tensors[name] = t;
  }
  auto set = WeightSet::from_tensors(std::move(tensors))->with_patch_dtype(at::kHalf);
  try {
    return std::make_shared<const ClipModel>(std::move(set), std::move(spec), options.embedding_directories);
  } catch (const ComfyError& e) {
    throw ComfyError(e.type(), "cannot load " + path.string() + " as a " + file.what + " text encoder: " + e.what());
  }
}

std::vector<std::pair<std::string, at::Tensor>> clip_state_dict(const ClipModel& clip) {
  const std::string root = clip.spec().name + ".";
  const WeightSet& w = *clip.weights();
  std::vector<std::pair<std::string, at::Tensor>> out;
  bool has_projection = false, has_logit_scale = false;
  for (const std::string& k : w.keys_with_prefix(root)) {
    if (ends_with(k, ".position_ids")) continue;
    const std::string key = root + k;
    at::Tensor raw = w.raw(key);
    at::Tensor t;
    if (k == "logit_scale") {
      t = w.get(key, at::kFloat);
      has_logit_scale = true;
    } else if (at::isFloatingType(raw.scalar_type())) {
      t = w.get(key, at::kHalf);
    } else {
      t = raw;
    }
    if (k == "transformer.text_projection.weight") has_projection = true;
    out.emplace_back(key, t.contiguous());
  }
  if (!has_projection) {
    const int64_t width = w.raw(root + "transformer.text_model.embeddings.token_embedding.weight").size(1);
    out.emplace_back(root + "transformer.text_projection.weight", at::zeros({width, width}, at::kHalf));
  }
  if (!has_logit_scale) out.emplace_back(root + "logit_scale", at::scalar_tensor(4.6055, at::kFloat));
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> clip_state_dict_for_checkpoint(const ClipModel& clip) {
  const std::string name = clip.spec().name;
  std::vector<std::pair<std::string, at::Tensor>> sd = clip_state_dict(clip);
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (name == "clip_l") {
    // SD15.process_clip_state_dict_for_saving.
    for (auto& [k, t] : sd) {
      if (k == "clip_l.transformer.text_projection.weight" || k == "clip_l.logit_scale") continue;
      out.emplace_back("cond_stage_model." + k.substr(std::string("clip_l.").size()), t);
    }
    return out;
  }
  // SD20.process_clip_state_dict_for_saving: back to OpenCLIP under cond_stage_model.model.
  const std::string to = "cond_stage_model.model.";
  const std::string tm = name + ".transformer.text_model.";
  const std::string layers = tm + "encoder.layers.";
  std::map<std::string, std::array<at::Tensor, 3>> qkv;  // "N.weight" -> q, k, v
  static const std::pair<const char*, const char*> kRename[] = {{"self_attn.out_proj.", "attn.out_proj."},
                                                                {"layer_norm1.", "ln_1."},
                                                                {"layer_norm2.", "ln_2."},
                                                                {"mlp.fc1.", "mlp.c_fc."},
                                                                {"mlp.fc2.", "mlp.c_proj."}};
  for (auto& [k, t] : sd) {
    if (starts_with(k, layers)) {
      const std::string rest = k.substr(layers.size());  // "N.self_attn.q_proj.weight"
      const size_t dot = rest.find('.');
      const std::string n = rest.substr(0, dot), sub = rest.substr(dot + 1);
      bool done = false;
      for (int i = 0; i < 3 && !done; ++i) {
        const std::string head = std::string("self_attn.") + "qkv"[i] + "_proj.";
        if (starts_with(sub, head)) {
          qkv[n + "." + sub.substr(head.size())][i] = t;
          done = true;
        }
      }
      for (const auto& [a, b] : kRename) {
        if (done || !starts_with(sub, a)) continue;
        out.emplace_back(to + "transformer.resblocks." + n + "." + b + sub.substr(std::string(a).size()), t);
        done = true;
      }
      if (!done) out.emplace_back(to + "transformer.resblocks." + n + "." + sub, t);
    } else if (starts_with(k, tm + "final_layer_norm.")) {
      out.emplace_back(to + "ln_final." + k.substr((tm + "final_layer_norm.").size()), t);
    } else if (k == tm + "embeddings.token_embedding.weight") {
      out.emplace_back(to + "token_embedding.weight", t);
    } else if (k == tm + "embeddings.position_embedding.weight") {
      out.emplace_back(to + "positional_embedding", t);
    } else if (k == name + ".transformer.text_projection.weight") {
      out.emplace_back(to + "text_projection", t.t().contiguous());
    } else {
      out.emplace_back(to + k.substr(name.size() + 1), t);
    }
  }
  for (auto& [nk, parts] : qkv) {
    const size_t dot = nk.find('.');
    for (const auto& p : parts)
      if (!p.defined())
        throw ComfyError("Exception", "CORRUPTED MODEL: one of the q-k-v values for the text encoder was missing");
    out.emplace_back(to + "transformer.resblocks." + nk.substr(0, dot) + ".attn.in_proj_" + nk.substr(dot + 1),
                     at::cat({parts[0], parts[1], parts[2]}, 0));
  }
  return out;
}

}  // namespace comfy
