// ClipModel: tokenizer + CLIP text transformer + ComfyUI's token-weight math; and the loader
// that finds a checkpoint's text encoder (comfy/supported_models.py SD15/SD20
// process_clip_state_dict, comfy/utils.py clip_text_transformers_convert).
#include "models/clip_model.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "text/clip_tokenizer.h"
#include "text/embedding_files.h"

namespace comfy {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// comfy/sd1_clip.py bundled_embed: every tensor whose name starts with `prefix` and ends with
// `suffix`, concatenated along dim 0 (the names in sorted order, as safetensors lists them).
at::Tensor bundled(const SafetensorsFile& f, const std::vector<std::string>& keys, const std::string& prefix,
                   const std::string& suffix) {
  std::vector<at::Tensor> parts;
  for (const std::string& k : keys)
    if (k.rfind(prefix, 0) == 0 && ends_with(k, suffix)) parts.push_back(f.tensor(k).to(at::kFloat));
  return parts.empty() ? at::Tensor() : at::cat(parts, 0);
}

}  // namespace

at::Tensor EmbeddingSource::load(const std::string& name) const {
  std::optional<std::filesystem::path> file = find_embedding_file(directories, name);
  if (!file) return {};
  std::string lower = file->string();
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!ends_with(lower, ".safetensors")) {
    // ComfyUI reads .pt/.bin with torch.load(weights_only=True): here the restricted unpickler.
    try {
      io::PickleCheckpoint ck = io::load_pickle_checkpoint(*file);
      const at::Tensor* out = nullptr;
      for (const auto& [k, t] : ck.tensors)
        if (!out && k.rfind("string_to_param.", 0) == 0) out = &t;  // A1111: string_to_param["*"]
      for (const auto& [k, t] : ck.tensors)
        if (!out && k == key) out = &t;
      if (!out && !ck.tensors.empty()) out = &ck.tensors.front().second;
      if (!out) throw ComfyError("StopIteration", "the embedding file holds no tensor");
      return out->to(at::kFloat);
    } catch (const std::exception& e) {
      spdlog::warn("{}\n\nerror loading embedding, skipping loading: {}", e.what(), name);
      return {};
    }
  }
  try {
    auto f = SafetensorsFile::open(*file);
    // safetensors.torch.load_file returns the tensors in sorted name order.
    std::vector<std::string> keys = f->keys();
    std::sort(keys.begin(), keys.end());
    if (keys.empty()) throw ComfyError("StopIteration", "the embedding file holds no tensor");
    at::Tensor out;
    if (f->contains(key)) out = f->tensor(key);
    if (!out.defined()) out = bundled(*f, keys, "bundle_emb.", ".string_to_param.*");
    if (!out.defined()) out = bundled(*f, keys, "bundle_emb.", "." + key);
    if (!out.defined()) out = f->tensor(keys.front());
    return out.to(at::kFloat);
  } catch (const std::exception& e) {
    spdlog::warn("{}\n\nerror loading embedding, skipping loading: {}", e.what(), name);
    return {};
  }
}

ClipModel::ClipModel(std::shared_ptr<const WeightSet> weights, Spec spec,
                     std::vector<std::filesystem::path> embedding_directories)
    : weights_(std::move(weights)), spec_(std::move(spec)) {
  if (!weights_) throw ComfyError("ValueError", "ClipModel needs weights");
  config_ = nn::clip_text_config(transformer(), spec_.activation);
  auto source = std::make_shared<EmbeddingSource>();
  source->directories = std::move(embedding_directories);
  source->key = spec_.name;
  source->width = spec_.embedding_width;
  embeddings_ = source;
  EmbeddingLookup lookup = [source](const std::string& name) -> std::optional<int64_t> {
    at::Tensor e = source->load(name);
    if (!e.defined()) return std::nullopt;
    return e.dim() <= 1 ? 1 : e.size(0);
  };
  tokenizer_ = std::make_shared<SDTokenizer>(ClipTokenizer::shared_default(), spec_.tokenizer, std::move(lookup));
}

TokenChunks ClipModel::tokenize(std::string_view text) const { return tokenizer_->tokenize_with_weights(text); }

std::shared_ptr<const ClipModel> ClipModel::with_layer_idx(std::optional<int> idx) const {
  auto copy = std::make_shared<ClipModel>(*this);
  copy->layer_idx_ = idx;
  return copy;
}

std::shared_ptr<const ClipModel> ClipModel::with_weights(std::shared_ptr<const WeightSet> weights) const {
  auto copy = std::make_shared<ClipModel>(*this);
  copy->weights_ = std::move(weights);
  copy->config_ = nn::clip_text_config(copy->transformer(), spec_.activation);
  return copy;
}

ClipEncoding ClipModel::encode_from_tokens(const TokenChunks& chunks) const {
  const nn::ClipTextConfig& cfg = config_;
  const Weights w = transformer();
  const int end_token = ClipTokenizer::kEndToken;

  // ClipTokenWeightEncoder.encode_token_weights: the chunks, plus the empty prompt when a weight
  // is not 1 (or there is no chunk at all).
  size_t max_len = 0;
  bool has_weights = false;
  for (const auto& chunk : chunks) {
    max_len = std::max(max_len, chunk.size());
    for (const TokenRow& r : chunk) has_weights = has_weights || r.weight != 1.0;
  }
  const size_t sections = chunks.size();
  std::vector<std::vector<TokenRow>> to_encode(chunks.begin(), chunks.end());
  if (has_weights || sections == 0) {
    // gen_empty_tokens: start, end, then pad up to the longest chunk.
    auto special = [](int id) {
      TokenRow r;
      r.token = id;
      return r;
    };
    std::vector<TokenRow> empty{special(ClipTokenizer::kStartToken), special(end_token)};
    while (empty.size() < max_len) empty.push_back(special(spec_.pad_token));
    to_encode.push_back(std::move(empty));
  }

  // SDClipModel.process_tokens: token embeddings with the textual-inversion vectors put in their
  // rows; attended positions are counted up to the first end token (plus every embedding row).
  std::map<std::string, at::Tensor> loaded;
  std::vector<at::Tensor> embeds;
  std::vector<int64_t> num_tokens;
  for (const auto& chunk : to_encode) {
    std::vector<int64_t> ids;
    std::vector<int> mask;
    std::vector<std::pair<int64_t, at::Tensor>> others;  // (row, vectors [n, width])
    bool eos = false;
    for (size_t j = 0; j < chunk.size(); ++j) {
      const TokenRow& r = chunk[j];
      if (!r.is_embedding()) {
        mask.push_back(eos ? 0 : 1);
        ids.push_back(r.token);
        if (!eos && r.token == end_token) eos = true;
        continue;
      }
      auto it = loaded.find(r.embedding);
      if (it == loaded.end()) {
        at::Tensor e = embeddings_->load(r.embedding);
        if (!e.defined())
          throw ComfyError("RuntimeError", "embedding '" + r.embedding + "' could not be loaded");
        it = loaded.emplace(r.embedding, e).first;
      }
      const at::Tensor& e = it->second;
      at::Tensor row = e.dim() <= 1 ? e : e.select(0, r.embedding_row);
      others.emplace_back(static_cast<int64_t>(j), row.reshape({-1, row.size(-1)}));
    }
    at::Tensor x = nn::clip_token_embeddings(cfg, w, at::tensor(ids, at::kLong).unsqueeze(0)).squeeze(0);
    int64_t offset = 0, pad_extra = 0;
    for (auto& [row, vectors] : others) {
      const int64_t n = vectors.size(0);
      if (vectors.size(-1) == cfg.hidden) {
        const int64_t at_row = offset + row;
        x = at::cat({x.narrow(0, 0, at_row), vectors, x.narrow(0, at_row, x.size(0) - at_row)}, 0);
        mask.insert(mask.begin() + at_row, n, 1);
        offset += n - 1;
      } else {
        offset -= 1;
        pad_extra += n;
        spdlog::warn("WARNING: shape mismatch when trying to apply embedding, embedding will be ignored {} != {}",
                     vectors.size(-1), cfg.hidden);
      }
    }
    if (pad_extra > 0) {
      std::vector<int64_t> pads(pad_extra, spec_.pad_token);
      x = at::cat({x, nn::clip_token_embeddings(cfg, w, at::tensor(pads, at::kLong).unsqueeze(0)).squeeze(0)}, 0);
      mask.insert(mask.end(), pad_extra, 0);
    }
    embeds.push_back(x);
    int64_t count = 0;
    for (int m : mask) count += m;
    num_tokens.push_back(count);
  }
  for (const auto& e : embeds)
    if (e.size(0) != embeds.front().size(0))
      throw ComfyError("RuntimeError", "Sizes of tensors must match: the prompt chunks have different lengths");

  // set_clip_options({"layer": idx}): a layer within the model's depth is taken from the hidden
  // states (with the final LayerNorm), anything else means the last layer.
  std::optional<int> layer = layer_idx_ ? layer_idx_ : spec_.default_layer_idx;
  if (layer && std::abs(*layer) > cfg.layers) layer.reset();

  nn::ClipTextOutput o = nn::clip_text_forward(cfg, w, at::stack(embeds), num_tokens,
                                               layer ? std::optional<int64_t>(*layer) : std::nullopt, true);
  at::Tensor out = layer ? o.intermediate : o.last;
  at::Tensor pooled = spec_.return_projected_pooled && o.projected.defined() ? o.projected : o.pooled;

  ClipEncoding result;
  result.pooled = pooled.narrow(0, 0, 1).contiguous();
  if (sections == 0) {
    result.cond = out.narrow(0, out.size(0) - 1, 1).contiguous();
    return result;
  }
  std::vector<at::Tensor> parts;
  for (size_t k = 0; k < sections; ++k) {
    at::Tensor z = out.narrow(0, static_cast<int64_t>(k), 1);
    if (has_weights) {
      // z[j] = (z[j] - z_empty[j]) * weight + z_empty[j] for each row whose weight is not 1; the
      // weight is a Python float, applied to f32 values (rounded to f32, as torch does).
      const at::Tensor z_empty = out.select(0, out.size(0) - 1);
      const auto& chunk = chunks[k];
      std::vector<float> weights(chunk.size());
      std::vector<uint8_t> change(chunk.size());
      for (size_t j = 0; j < chunk.size(); ++j) {
        weights[j] = static_cast<float>(chunk[j].weight);
        change[j] = chunk[j].weight != 1.0;
      }
      const int64_t n = static_cast<int64_t>(chunk.size());
      at::Tensor wt = at::tensor(weights, at::kFloat).unsqueeze(-1);
      at::Tensor sel = at::tensor(std::vector<int64_t>(change.begin(), change.end()), at::kLong).to(at::kBool).unsqueeze(-1);
      at::Tensor zk = z.squeeze(0).narrow(0, 0, n);
      at::Tensor ze = z_empty.narrow(0, 0, n);
      at::Tensor weighted = at::where(sel, (zk - ze) * wt + ze, zk);
      z = (n == z.size(1) ? weighted : at::cat({weighted, z.squeeze(0).narrow(0, n, z.size(1) - n)}, 0)).unsqueeze(0);
    }
    parts.push_back(z);
  }
  result.cond = at::cat(parts, 1).contiguous();
  return result;
}

// ------------------------------------------------------------------ loading from a checkpoint

ClipModel::Spec clip_spec_for_family(const std::string& family) {
  ClipModel::Spec spec;
  if (family.rfind("SD1", 0) == 0) return spec;  // CLIP-L: quick_gelu, pad with the end token
  if (family.rfind("SD2", 0) == 0) {
    // comfy/text_encoders/sd2_clip.py: OpenCLIP-H, gelu, pads with 0, layer="penultimate"
    // (hidden state of layer -2), projected pooled output, 1024-wide embeddings.
    spec.name = "clip_h";
    spec.activation = nn::ClipActivation::Gelu;
    spec.tokenizer.pad_with_end = false;
    spec.pad_token = 0;
    spec.default_layer_idx = -2;
    spec.return_projected_pooled = true;
    spec.embedding_width = 1024;
    return spec;
  }
  throw ComfyError("ValueError", "no text encoder is known for model family '" + family + "'");
}

std::shared_ptr<const WeightSet> openclip_to_hf(const WeightSet& set, const std::string& from, const std::string& to) {
  std::unordered_map<std::string, at::Tensor> out;
  const std::string tm = to + "text_model.";
  auto move = [&](const std::string& a, const std::string& b) {
    if (set.has(from + a)) out[b] = set.raw(from + a);
  };
  move("positional_embedding", tm + "embeddings.position_embedding.weight");
  move("token_embedding.weight", tm + "embeddings.token_embedding.weight");
  move("ln_final.weight", tm + "final_layer_norm.weight");
  move("ln_final.bias", tm + "final_layer_norm.bias");
  static const std::pair<const char*, const char*> kResblock[] = {
      {"ln_1", "layer_norm1"}, {"ln_2", "layer_norm2"}, {"mlp.c_fc", "mlp.fc1"},
      {"mlp.c_proj", "mlp.fc2"}, {"attn.out_proj", "self_attn.out_proj"}};
  // ComfyUI converts resblocks 0..31; every block present is converted here.
  for (int n = 0;; ++n) {
    const std::string blk = from + "transformer.resblocks." + std::to_string(n) + ".";
    if (set.keys_with_prefix(blk).empty()) break;
    const std::string dst = tm + "encoder.layers." + std::to_string(n) + ".";
    for (const auto& [a, b] : kResblock)
      for (const char* y : {"weight", "bias"})
        move("transformer.resblocks." + std::to_string(n) + "." + a + "." + y, dst + b + "." + y);
    for (const char* y : {"weight", "bias"}) {
      const std::string k = blk + "attn.in_proj_" + y;
      if (!set.has(k)) continue;
      at::Tensor qkv = set.raw(k);
      const int64_t third = qkv.size(0) / 3;
      const char* names[] = {"self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj."};
      for (int i = 0; i < 3; ++i) out[dst + names[i] + y] = qkv.narrow(0, i * third, third);
    }
  }
  if (set.has(from + "text_projection.weight")) out[to + "text_projection.weight"] = set.raw(from + "text_projection.weight");
  if (set.has(from + "text_projection")) out[to + "text_projection.weight"] = set.raw(from + "text_projection").t();
  return WeightSet::from_tensors(std::move(out));
}

std::shared_ptr<const ClipModel> make_clip_from_checkpoint(std::shared_ptr<const WeightSet> set, const std::string& family,
                                                           const ClipLoadOptions& options) {
  if (!set) throw ComfyError("ValueError", "make_clip_from_checkpoint: no weights");
  ClipModel::Spec spec = clip_spec_for_family(family);
  const std::string root = spec.name + ".transformer.";
  std::shared_ptr<const WeightSet> clip;
  if (spec.name == "clip_l") {
    // SD15.process_clip_state_dict: "cond_stage_model.transformer." keys without "text_model."
    // (older SD1 files) get it inserted; everything ends up under clip_l.transformer.
    const std::string hf = "cond_stage_model.transformer.text_model.";
    if (!set->keys_with_prefix(hf).empty())
      clip = set->renamed_prefix(hf, root + "text_model.");
    else if (!set->keys_with_prefix("cond_stage_model.").empty())
      clip = set->renamed_prefix("cond_stage_model.transformer.", root + "text_model.");
    // Keys under cond_stage_model. that are not a CLIP-L then fail in the ClipModel constructor.
    if (clip && clip->keys().empty() && !set->keys_with_prefix("cond_stage_model.").empty())
      throw ComfyError("ValueError", "the checkpoint's cond_stage_model. weights are not a CLIP-L text encoder");
  } else {
    for (const char* prefix : {"cond_stage_model.model.", "conditioner.embedders.0.model."}) {
      if (set->keys_with_prefix(prefix).empty()) continue;
      clip = openclip_to_hf(*set, prefix, root);
      break;
    }
  }
  if (!clip || clip->keys().empty()) {
    // load_state_dict_guess_config: a checkpoint without text encoder keys loads with clip None.
    spdlog::warn("no CLIP/text encoder weights in checkpoint, the text encoder model will not be loaded.");
    return nullptr;
  }
  // ComfyUI keeps text encoders in fp16 on the CPU (model_management.text_encoder_dtype): other
  // float weights are rounded to fp16 once, here; fp16 ones stay zero-copy views.
  std::unordered_map<std::string, at::Tensor> rounded;
  for (const std::string& k : clip->keys()) {
    at::Tensor t = clip->raw(k);
    if (at::isFloatingType(t.scalar_type()) && t.scalar_type() != at::kHalf) rounded[k] = t.to(at::kHalf);
  }
  if (!rounded.empty()) clip = clip->with_tensors(std::move(rounded));
  clip = clip->with_patch_dtype(at::kHalf);
  return std::make_shared<const ClipModel>(std::move(clip), std::move(spec), options.embedding_directories);
}

}  // namespace comfy
