// The CLIP text transformer as ComfyUI runs it (comfy/clip_model.py CLIPTextModel_ and
// CLIPTextModel, driven by comfy/sd1_clip.py SDClipModel): token (or embedding) vectors plus
// learned positions, pre-LayerNorm transformer layers with a causal mask, a final LayerNorm,
// an optional intermediate layer's hidden state (clip skip) and a pooled vector.
//
// The weights are read through a Weights view of the HF "CLIPTextModel" root:
//   text_model.embeddings.token_embedding.weight     [vocab, hidden]
//   text_model.embeddings.position_embedding.weight  [positions, hidden]
//   text_model.encoder.layers.N.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,mlp.fc2}
//   text_model.final_layer_norm
//   text_projection.weight                           [proj, hidden] (optional; SD2 has one)
// Every size comes from these shapes (clip_text_config); the computation is f32 whatever the
// stored dtype (ComfyUI's manual_cast ops cast each weight on use).
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "models/weights.h"

namespace comfy::nn {

enum class ClipActivation {
  QuickGelu,  // OpenAI CLIP-L (SD1.x): x * sigmoid(1.702 x)
  Gelu,       // OpenCLIP-H (SD2.x): erf gelu
};

struct ClipTextConfig {
  int64_t hidden = 0;          // columns of token_embedding.weight
  int64_t heads = 0;           // hidden / 64 (CLIP-L 12, OpenCLIP-H 16)
  int64_t layers = 0;          // number of encoder.layers.N
  int64_t mlp = 0;             // rows of mlp.fc1.weight
  int64_t positions = 0;       // rows of position_embedding.weight
  int64_t vocab = 0;           // rows of token_embedding.weight
  int64_t projection_dim = 0;  // rows of text_projection.weight, 0 when there is none
  ClipActivation activation = ClipActivation::QuickGelu;
  double eps = 1e-5;           // every LayerNorm
  int eos_token = 49407;
};

// Reads the config from the shapes under `w` (see above). ComfyError (ValueError) naming the
// missing key when `w` is not a CLIP text model.
ClipTextConfig clip_text_config(const Weights& w, ClipActivation activation);

// Token ids [B, L] (int64) -> token embeddings [B, L, hidden] in f32.
at::Tensor clip_token_embeddings(const ClipTextConfig& cfg, const Weights& w, const at::Tensor& tokens);

struct ClipTextOutput {
  at::Tensor last;          // [B, L, hidden]: the last layer's output after final_layer_norm
  at::Tensor intermediate;  // [B, L, hidden]: the requested layer's output (undefined if none)
  at::Tensor pooled;        // [B, hidden]: `last` at each sequence's pooled position
  at::Tensor projected;     // [B, proj]: pooled through text_projection (undefined without one)
};

// ComfyUI's CLIPTextModel_.forward on input embeddings [B, L, hidden] (token or textual
// inversion vectors, before positions are added; L = positions).
//   intermediate_layer: the layer whose output is also returned (ComfyUI's intermediate_output;
//     negative counts from the end, -1 is the last layer), nullopt for none.
//   final_ln_intermediate: pass that output through final_layer_norm too (ComfyUI's
//     layer_norm_hidden_state, true for SD1 and SD2).
//   num_tokens: per sequence, the number of attended positions; the pooled vector is taken at
//     num_tokens - 1 (the end token). Empty: at the first eos token of `tokens` instead
//     (ComfyUI's argmax(tokens == eos)), which then must be given.
ClipTextOutput clip_text_forward(const ClipTextConfig& cfg, const Weights& w, const at::Tensor& embeds,
                                 const std::vector<int64_t>& num_tokens, std::optional<int64_t> intermediate_layer,
                                 bool final_ln_intermediate = true, const at::Tensor& tokens = {});

// clip_text_forward on token ids [B, L]: embeddings looked up, pooled at the first eos token.
ClipTextOutput clip_text_encode_tokens(const ClipTextConfig& cfg, const Weights& w, const at::Tensor& tokens,
                                       std::optional<int64_t> intermediate_layer, bool final_ln_intermediate = true);

}  // namespace comfy::nn
