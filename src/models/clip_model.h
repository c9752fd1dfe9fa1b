// CLIP: a text encoder with its tokenizer, as ComfyUI's CLIP object holds them (comfy/sd.py CLIP,
// comfy/sd1_clip.py SDClipModel): SD1.x's CLIP-L and SD2.x's OpenCLIP-H. Immutable: CLIPSetLastLayer
// and LoRA make new objects sharing the weights.
//
// A CLIP value on a link is the ClipModel itself (it is an Object): Value(std::shared_ptr<const
// ClipModel>) puts one on a link, clip_of(value) reads it back.
//
// Weights: the model's WeightSet holds ComfyUI's CLIP state-dict keys in the HF layout, i.e.
// exactly the keys ComfyUI's LoRA key maps target (comfy/lora.py model_lora_keys_clip):
//   SD1: clip_l.transformer.text_model.{embeddings,encoder.layers.N,final_layer_norm}.*
//   SD2: clip_h.transformer.text_model.* and clip_h.transformer.text_projection.weight
// (SD2's OpenCLIP keys are converted at load as comfy/utils.py clip_text_transformers_convert
// does). They are stored in fp16, as ComfyUI keeps text encoders on the CPU (text_encoder_dtype),
// and the set's patch dtype is fp16 so that a LoRA-patched weight is rounded to fp16 as in ComfyUI.
#pragma once
#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "graph/value.h"
#include "models/weights.h"
#include "nn/clip_text.h"
#include "text/sd_tokenizer.h"

namespace comfy {

struct ClipLoadOptions {
  std::vector<std::filesystem::path> embedding_directories;  // models/embeddings folders
};

// Textual-inversion embeddings (comfy/sd1_clip.py load_embed) for one text encoder: files found
// with find_embedding_file in the directories, read on each use (ComfyUI does not cache them).
struct EmbeddingSource {
  std::vector<std::filesystem::path> directories;
  std::string key;         // the tensor name preferred in a multi-encoder file ("clip_l", "clip_h")
  int64_t width = 768;     // the tokenizer's embedding_size (768 SD1, 1024 SD2)

  // The vectors of `name` as f32 [rows, ...] (a 1-D embedding is one row), or undefined when
  // there is no such file or it cannot be read (a warning is logged, as ComfyUI does).
  at::Tensor load(const std::string& name) const;
};

struct ClipEncoding {
  at::Tensor cond;    // [1, 77 * chunks, width]
  at::Tensor pooled;  // [1, width] (SD1: unprojected; SD2: through text_projection)
};

class ClipModel : public Object {
 public:
  // What differs between the text encoders (ComfyUI's SDClipModel / SDTokenizer arguments).
  struct Spec {
    std::string name = "clip_l";          // state-dict prefix: weights live under name + ".transformer."
    nn::ClipActivation activation = nn::ClipActivation::QuickGelu;
    SDTokenizerOptions tokenizer;          // pad_with_end: true for CLIP-L, false for OpenCLIP-H
    int pad_token = 49407;                 // special_tokens["pad"]
    std::optional<int> default_layer_idx;  // SD2: -2 ("penultimate")
    bool return_projected_pooled = false;  // SD1 checkpoints: false; SD2: true
    int64_t embedding_width = 768;
  };

  // `weights` holds spec.name + ".transformer.text_model.*" (see the top of this file).
  ClipModel(std::shared_ptr<const WeightSet> weights, Spec spec, std::vector<std::filesystem::path> embedding_directories);

  // ComfyUI's clip.tokenize(text): tokenize_with_weights with word ids.
  TokenChunks tokenize(std::string_view text) const;
  // ComfyUI's encode_from_tokens(tokens, return_pooled=True): every chunk encoded in one batch,
  // weights applied as z_empty + w * (z - z_empty) when any weight is not 1.
  ClipEncoding encode_from_tokens(const TokenChunks& chunks) const;

  // CLIPSetLastLayer: the same model with ComfyUI's clip.clip_layer(idx). nullopt restores the
  // default. A layer beyond the model's depth means the last layer, as in ComfyUI.
  std::shared_ptr<const ClipModel> with_layer_idx(std::optional<int> idx) const;
  // The same model on other weights (a LoRA-patched or merged set with the same keys).
  std::shared_ptr<const ClipModel> with_weights(std::shared_ptr<const WeightSet> weights) const;

  const std::shared_ptr<const WeightSet>& weights() const { return weights_; }
  const nn::ClipTextConfig& config() const { return config_; }
  const Spec& spec() const { return spec_; }
  std::optional<int> layer_idx() const { return layer_idx_; }  // what clip_layer set, if anything
  const SDTokenizer& tokenizer() const { return *tokenizer_; }
  const EmbeddingSource& embeddings() const { return *embeddings_; }
  Weights transformer() const { return Weights(weights_, spec_.name + ".transformer."); }

  std::string repr() const override { return "<comfy.sd.CLIP object>"; }

 private:
  std::shared_ptr<const WeightSet> weights_;
  Spec spec_;
  nn::ClipTextConfig config_;
  std::optional<int> layer_idx_;
  std::shared_ptr<const EmbeddingSource> embeddings_;
  std::shared_ptr<const SDTokenizer> tokenizer_;
};

// The CLIP on a link; TypeError when the value holds something else.
inline const ClipModel& clip_of(const Value& v) { return v.as<ClipModel>("CLIP"); }

// Builds the CLIP of a checkpoint whose keys are in `set` with the checkpoint's own prefixes
// (SD1: "cond_stage_model.transformer.text_model." (or the older "cond_stage_model.transformer."),
// SD2: "cond_stage_model.model." or "conditioner.embedders.0.model." in OpenCLIP layout), for the
// family the UNet detection named ("SD15", "SD20", "SD21UnclipH", ...: "SD1*" is CLIP-L, "SD2*"
// OpenCLIP-H). Returns nullptr (with ComfyUI's warning "no CLIP/text encoder weights in
// checkpoint, ...") when the checkpoint has no text encoder keys at all, as ComfyUI then loads
// the checkpoint with clip None; ComfyError (ValueError) naming what is missing when there are
// text encoder keys that are not a complete known text encoder, or the family has none.
std::shared_ptr<const ClipModel> make_clip_from_checkpoint(std::shared_ptr<const WeightSet> set,
                                                           const std::string& family,
                                                           const ClipLoadOptions& options);

// comfy/utils.py clip_text_transformers_convert: OpenCLIP text keys under `prefix_from`
// (positional_embedding, token_embedding, transformer.resblocks.N.{ln_1,attn.in_proj_*,...},
// ln_final, text_projection) renamed to the HF layout under `prefix_to` + "text_model." (and
// prefix_to + "text_projection.weight", transposed). The q/k/v split and the transposition are
// views of the original tensors. Keys of `set` outside `prefix_from` are not kept.
std::shared_ptr<const WeightSet> openclip_to_hf(const WeightSet& set, const std::string& prefix_from,
                                                const std::string& prefix_to);

// The ClipModel spec for a family ("SD15" -> CLIP-L, "SD20"/"SD21*" -> OpenCLIP-H).
ClipModel::Spec clip_spec_for_family(const std::string& family);

}  // namespace comfy
