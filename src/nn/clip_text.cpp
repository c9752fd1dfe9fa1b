#include "nn/clip_text.h"

#include <algorithm>
#include <limits>
#include <string>

#include "core/error.h"
#include "models/weight_pages.h"
#include "nn/layers.h"

namespace comfy::nn {

namespace {

const char* kEmbeddings = "text_model.embeddings.";

int64_t count_layers(const Weights& w) {
  // encoder.layers.N.* -> the largest N + 1 (ComfyUI's configs state it; the shapes imply it).
  int64_t n = 0;
  for (const std::string& k : w.sub("text_model.encoder.layers.").keys()) {
    size_t dot = k.find('.');
    if (dot == std::string::npos || dot == 0) continue;
    bool digits = true;
    for (size_t i = 0; i < dot; ++i) digits = digits && k[i] >= '0' && k[i] <= '9';
    if (digits) n = std::max<int64_t>(n, std::stoll(k.substr(0, dot)) + 1);
  }
  return n;
}

std::vector<int64_t> require_shape(const Weights& w, const std::string& key, size_t dims) {
  if (!w.has(key))
    throw ComfyError("ValueError", "not a CLIP text model: missing weight '" + w.prefix + key + "'");
  std::vector<int64_t> s = w.shape(key);
  if (s.size() != dims)
    throw ComfyError("ValueError", "CLIP text model weight '" + w.prefix + key + "' has " + std::to_string(s.size()) +
                                       " dimensions, expected " + std::to_string(dims));
  return s;
}

at::Tensor activation(ClipActivation a, const at::Tensor& x) {
  return a == ClipActivation::QuickGelu ? quick_gelu(x) : at::gelu(x);
}

// ComfyUI's CLIPLayer: x += attn(ln1(x)); x += mlp(ln2(x)).
at::Tensor clip_layer(const ClipTextConfig& cfg, const Weights& w, at::Tensor x, const at::Tensor& mask) {
  at::Tensor h = layer_norm(w.sub("layer_norm1."), x, cfg.eps);
  const Weights attn = w.sub("self_attn.");
  at::Tensor q = linear(attn.sub("q_proj."), h), k = linear(attn.sub("k_proj."), h), v = linear(attn.sub("v_proj."), h);
  x = x + linear(attn.sub("out_proj."), attention(q, k, v, cfg.heads, mask));
  h = layer_norm(w.sub("layer_norm2."), x, cfg.eps);
  h = linear(w.sub("mlp.fc2."), activation(cfg.activation, linear(w.sub("mlp.fc1."), h)));
  return x + h;
}

}  // namespace

ClipTextConfig clip_text_config(const Weights& w, ClipActivation act) {
  ClipTextConfig cfg;
  auto tok = require_shape(w, std::string(kEmbeddings) + "token_embedding.weight", 2);
  auto pos = require_shape(w, std::string(kEmbeddings) + "position_embedding.weight", 2);
  cfg.vocab = tok[0];
  cfg.hidden = tok[1];
  cfg.positions = pos[0];
  cfg.heads = cfg.hidden / 64;
  cfg.layers = count_layers(w);
  if (cfg.layers == 0 || cfg.heads == 0 || cfg.hidden % 64 != 0 || pos[1] != cfg.hidden)
    throw ComfyError("ValueError", "not a CLIP text model: unexpected sizes under '" + w.prefix + "text_model.'");
  cfg.mlp = require_shape(w, "text_model.encoder.layers.0.mlp.fc1.weight", 2)[0];
  require_shape(w, "text_model.final_layer_norm.weight", 1);
  if (w.has("text_projection.weight")) cfg.projection_dim = require_shape(w, "text_projection.weight", 2)[0];
  cfg.activation = act;
  return cfg;
}

at::Tensor clip_token_embeddings(const ClipTextConfig& cfg, const Weights& w, const at::Tensor& tokens) {
  at::Tensor ids = tokens.to(at::kLong);
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= cfg.vocab))
    throw ComfyError("IndexError", "index out of range in self");
  // The lookup of an fp16 table then a cast to f32 equals ComfyUI's embedding(out_dtype=f32).
  return at::embedding(w(std::string(kEmbeddings) + "token_embedding.weight"), ids);
}

ClipTextOutput clip_text_forward(const ClipTextConfig& cfg, const Weights& w, const at::Tensor& embeds,
                                 const std::vector<int64_t>& num_tokens, std::optional<int64_t> intermediate_layer,
                                 bool final_ln_intermediate, const at::Tensor& tokens) {
  const int64_t batch = embeds.size(0), length = embeds.size(1);
  if (length != cfg.positions || embeds.size(2) != cfg.hidden)
    throw ComfyError("RuntimeError", "CLIP text input has " + std::to_string(length) + " positions of width " +
                                         std::to_string(embeds.size(2)) + ", the model takes " +
                                         std::to_string(cfg.positions) + " of width " + std::to_string(cfg.hidden));
  at::Tensor x = embeds.to(at::kFloat) + w(std::string(kEmbeddings) + "position_embedding.weight");

  // Causal mask with -finfo(f32).max above the diagonal (not -inf: a fully masked row would
  // give NaN with -inf; ComfyUI's value keeps every number finite).
  at::Tensor mask = at::full({length, length}, -std::numeric_limits<float>::max(), x.options()).triu_(1);

  std::optional<int64_t> wanted;
  if (intermediate_layer) {
    wanted = *intermediate_layer < 0 ? cfg.layers + *intermediate_layer : *intermediate_layer;
    if (*wanted < 0 || *wanted >= cfg.layers)
      throw ComfyError("ValueError", "CLIP layer " + std::to_string(*intermediate_layer) + " does not exist (the model has " +
                                         std::to_string(cfg.layers) + " layers)");
  }
  ClipTextOutput out;
  for (int64_t i = 0; i < cfg.layers; ++i) {
    x = clip_layer(cfg, w.sub("text_model.encoder.layers." + std::to_string(i) + "."), x, mask);
    if (wanted && i == *wanted) out.intermediate = x;
  }
  const Weights final_ln = w.sub("text_model.final_layer_norm.");
  out.last = layer_norm(final_ln, x, cfg.eps);
  if (out.intermediate.defined() && final_ln_intermediate) out.intermediate = layer_norm(final_ln, out.intermediate, cfg.eps);

  at::Tensor index;
  if (!num_tokens.empty()) {
    if (static_cast<int64_t>(num_tokens.size()) != batch)
      throw ComfyError("ValueError", "num_tokens has " + std::to_string(num_tokens.size()) + " entries for a batch of " +
                                         std::to_string(batch));
    index = at::tensor(num_tokens, at::kLong) - 1;
    index = index.clamp(-length, length - 1);  // Python indexing: -1 is the last position
    index = at::where(index < 0, index + length, index);
  } else {
    if (!tokens.defined()) throw ComfyError("ValueError", "clip_text_forward needs num_tokens or tokens");
    index = (tokens.to(at::kLong) == cfg.eos_token).to(at::kInt).argmax(-1);
  }
  out.pooled = out.last.index({at::arange(batch, at::kLong), index});
  if (cfg.projection_dim > 0) out.projected = linear(w.sub("text_projection."), out.pooled);
  // The text encoder runs once per prompt: its ~250 MB (SD1.5, f16) of mapped weights need not
  // stay in this process's resident set through sampling (they stay in the page cache).
  release_weight_pages(w);
  return out;
}

ClipTextOutput clip_text_encode_tokens(const ClipTextConfig& cfg, const Weights& w, const at::Tensor& tokens,
                                       std::optional<int64_t> intermediate_layer, bool final_ln_intermediate) {
  return clip_text_forward(cfg, w, clip_token_embeddings(cfg, w, tokens), {}, intermediate_layer,
                           final_ln_intermediate, tokens);
}

}  // namespace comfy::nn
