// The CLIP text encoder (nn/clip_text, models/clip_model) and the CLIPTextEncode /
// CLIPSetLastLayer nodes against the real ComfyUI 0.8.0: every clip_* case of
// tests/fixtures/reference/manifest.json, within its tolerance. SD2's OpenCLIP layout has no
// recorded case: its key conversion is checked against the same weights written in HF layout.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>

#include "core/error.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "io/safetensors.h"
#include "models/clip_model.h"
#include "models/conditioning.h"
#include "nodes/all.h"
#include "support/safetensors_read.h"

namespace comfy {
namespace {

const std::string kData = COMFY_TEST_DATA;

std::shared_ptr<const WeightSet> tiny_checkpoint() {
  static auto set = WeightSet::from_file(SafetensorsFile::open(kData + "/models/checkpoints/tiny_sd15.safetensors"));
  return set;
}

std::shared_ptr<const ClipModel> tiny_clip() {
  static auto clip = make_clip_from_checkpoint(tiny_checkpoint(), "SD15", {{kData + "/models/embeddings"}});
  return clip;
}

const json& manifest() {
  static const json m = [] {
    std::ifstream f(kData + "/reference/manifest.json");
    return json::parse(f);
  }();
  return m;
}

std::vector<std::string> clip_case_ids() {
  std::vector<std::string> ids;
  for (const auto& c : manifest()["cases"])
    if (c["id"].get<std::string>().rfind("clip_", 0) == 0) ids.push_back(c["id"].get<std::string>());
  return ids;
}

const json& case_of(const std::string& id) {
  for (const auto& c : manifest()["cases"])
    if (c["id"] == id) return c;
  throw std::runtime_error("no case " + id);
}

const Registry& clip_nodes() {
  static const Registry r = [] {
    Registry reg;
    register_clip(reg);
    return reg;
  }();
  return r;
}

NodeOutput run(const std::string& class_type, const std::map<std::string, Value>& inputs) {
  const NodeDef* def = clip_nodes().find(class_type);
  if (!def) throw std::runtime_error("no node " + class_type);
  Services services;
  std::atomic<bool> interrupt{false};
  ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {});
  NodeInputs in;
  for (const auto& [name, value] : inputs) in.values[name] = {value};
  return def->function(ctx, in);
}

Value clip_value(std::shared_ptr<const ClipModel> clip) { return Value(std::shared_ptr<const Object>(std::move(clip))); }

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// ------------------------------------------------------------------ ComfyUI's recorded cases

class RecordedClip : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordedClip, CLIPTextEncodeMatchesComfyUI) {
  const json& c = case_of(GetParam());
  Value clip = clip_value(tiny_clip());
  const int64_t layer = c["inputs"]["stop_at_clip_layer"].get<int64_t>();
  if (layer != -1) clip = run("CLIPSetLastLayer", {{"clip", clip}, {"stop_at_clip_layer", json(layer)}}).result.at(0);
  NodeOutput out = run("CLIPTextEncode", {{"clip", clip}, {"text", json(c["inputs"]["text"])}});
  const Conditioning& cond = conditioning_of(out.result.at(0));
  ASSERT_EQ(cond.entries.size(), 1u);
  const auto ref = testing::read_safetensors_f32(kData + "/reference/" + c["files"]["tensors"].get<std::string>());
  for (const auto& cmp : c["compare"]) {
    const std::string name = cmp["tensor"];
    ASSERT_EQ(cmp["metric"], "max_abs");
    const at::Tensor ours = name == "cond" ? cond.entries[0].cond : cond.entries[0].options.pooled_output;
    const at::Tensor& theirs = ref.at(name);
    ASSERT_TRUE(ours.defined()) << name;
    ASSERT_EQ(ours.sizes(), theirs.sizes()) << name;
    EXPECT_EQ(ours.scalar_type(), at::kFloat);
    const double diff = max_abs(ours, theirs);
    EXPECT_LE(diff, cmp["atol"].get<double>()) << GetParam() << " " << name;
    RecordProperty(name + "_max_abs", std::to_string(diff));
  }
}

INSTANTIATE_TEST_SUITE_P(ClipText, RecordedClip, ::testing::ValuesIn(clip_case_ids()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(ClipText, ManifestHasTheEightRecordedCases) { EXPECT_EQ(clip_case_ids().size(), 8u); }

// ------------------------------------------------------------------ config and loading

TEST(ClipText, ConfigComesFromTheShapes) {
  const nn::ClipTextConfig& cfg = tiny_clip()->config();
  EXPECT_EQ(cfg.hidden, 128);
  EXPECT_EQ(cfg.heads, 2);  // 128 / 64
  EXPECT_EQ(cfg.layers, 2);
  EXPECT_EQ(cfg.mlp, 512);
  EXPECT_EQ(cfg.positions, 77);
  EXPECT_EQ(cfg.vocab, 49408);
  EXPECT_EQ(cfg.projection_dim, 0);  // SD1 files have no text_projection
  EXPECT_EQ(cfg.activation, nn::ClipActivation::QuickGelu);
}

TEST(ClipText, CheckpointWeightsKeepComfyUIsClipKeysAndPatchInFp16) {
  auto clip = tiny_clip();
  EXPECT_TRUE(clip->weights()->has("clip_l.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(clip->weights()->keys_with_prefix("model.diffusion_model.").empty());
  EXPECT_EQ(clip->weights()->patch_dtype(), at::kHalf);
  // Zero-copy: the fp16 file tensor itself.
  EXPECT_EQ(clip->weights()->raw("clip_l.transformer.text_model.final_layer_norm.weight").data_ptr(),
            tiny_checkpoint()->raw("cond_stage_model.transformer.text_model.final_layer_norm.weight").data_ptr());
}

TEST(ClipText, UnknownFamilyOrMissingKeysIsAValueError) {
  try {
    make_clip_from_checkpoint(tiny_checkpoint(), "Flux", {});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "ValueError");
  }
  auto broken = tiny_checkpoint()->renamed_prefix("cond_stage_model.transformer.text_model.encoder.",
                                                  "cond_stage_model.transformer.text_model.encoder.");
  try {
    make_clip_from_checkpoint(broken, "SD15", {});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "ValueError");
    EXPECT_NE(std::string(e.what()).find("token_embedding"), std::string::npos) << e.what();
  }
}

TEST(ClipText, ACheckpointWithoutTextEncoderKeysHasNoClip) {
  // ComfyUI loads such a checkpoint with clip None (CLIPTextEncode then raises).
  auto unet_only = tiny_checkpoint()->renamed_prefix("model.diffusion_model.", "model.diffusion_model.");
  EXPECT_EQ(make_clip_from_checkpoint(unet_only, "SD15", {}), nullptr);
  EXPECT_EQ(make_clip_from_checkpoint(unet_only, "SD20", {}), nullptr);
}

TEST(ClipText, SetLastLayerBeyondTheDepthMeansTheLastLayer) {
  c10::InferenceMode guard;
  auto clip = tiny_clip();
  TokenChunks tokens = clip->tokenize("a photo of a cat");
  at::Tensor last = clip->encode_from_tokens(tokens).cond;
  EXPECT_TRUE(at::equal(clip->with_layer_idx(-3)->encode_from_tokens(tokens).cond, last));  // 2 layers
  EXPECT_FALSE(at::equal(clip->with_layer_idx(-2)->encode_from_tokens(tokens).cond, last));
  EXPECT_LE(max_abs(clip->with_layer_idx(-1)->encode_from_tokens(tokens).cond, last), 1e-6);
}

TEST(ClipText, CLIPTextEncodeWithoutAClipIsComfyUIsRuntimeError) {
  try {
    run("CLIPTextEncode", {{"clip", Value()}, {"text", json("x")}});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "RuntimeError");
    EXPECT_EQ(std::string(e.what()),
              "ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint does "
              "not contain a valid clip or text encoder model.");
  }
}

TEST(ClipText, AMissingEmbeddingIsIgnoredAsInComfyUI) {
  c10::InferenceMode guard;
  auto clip = tiny_clip();
  at::Tensor with = clip->encode_from_tokens(clip->tokenize("a cat embedding:no_such_embedding")).cond;
  at::Tensor without = clip->encode_from_tokens(clip->tokenize("a cat")).cond;
  EXPECT_TRUE(at::equal(with, without));
}

// A prompt of 10,000 words is neither refused nor truncated: it becomes ceil(10000/75) chunks of
// 77 tokens, each encoded, as ComfyUI does ("cat" is one token).
TEST(ClipText, AVeryLongPromptEncodesEveryChunk) {
  c10::InferenceMode guard;
  auto clip = tiny_clip();
  std::string text;
  for (int i = 0; i < 10000; ++i) text += i ? " cat" : "cat";
  auto chunks = clip->tokenize(text);
  ASSERT_EQ(chunks.size(), 134u);  // 10000 / 75 rounded up
  auto enc = clip->encode_from_tokens(chunks);
  EXPECT_EQ(enc.cond.sizes().vec(), (std::vector<int64_t>{1, 77 * 134, 128}));
  EXPECT_TRUE(at::isfinite(enc.cond).all().item<bool>());
}

// ------------------------------------------------------------------ SD2: OpenCLIP layout

constexpr int64_t kWidth = 128, kLayers = 2, kMlp = 256, kProj = 96, kVocab = 49408;

// A random OpenCLIP-H-shaped text model (smaller), as SD2 checkpoints store it.
std::unordered_map<std::string, at::Tensor> openclip_tensors(const std::string& p) {
  at::manual_seed(7);
  auto r = [](std::vector<int64_t> shape, double scale = 0.05) { return (at::randn(shape) * scale).to(at::kHalf); };
  std::unordered_map<std::string, at::Tensor> t;
  t[p + "token_embedding.weight"] = r({kVocab, kWidth}, 0.5);
  t[p + "positional_embedding"] = r({77, kWidth}, 0.2);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string b = p + "transformer.resblocks." + std::to_string(i) + ".";
    t[b + "ln_1.weight"] = (1 + at::randn({kWidth}) * 0.1).to(at::kHalf);
    t[b + "ln_1.bias"] = r({kWidth});
    t[b + "attn.in_proj_weight"] = r({3 * kWidth, kWidth}, 0.1);
    t[b + "attn.in_proj_bias"] = r({3 * kWidth});
    t[b + "attn.out_proj.weight"] = r({kWidth, kWidth}, 0.1);
    t[b + "attn.out_proj.bias"] = r({kWidth});
    t[b + "ln_2.weight"] = (1 + at::randn({kWidth}) * 0.1).to(at::kHalf);
    t[b + "ln_2.bias"] = r({kWidth});
    t[b + "mlp.c_fc.weight"] = r({kMlp, kWidth}, 0.1);
    t[b + "mlp.c_fc.bias"] = r({kMlp});
    t[b + "mlp.c_proj.weight"] = r({kWidth, kMlp}, 0.1);
    t[b + "mlp.c_proj.bias"] = r({kWidth});
  }
  t[p + "ln_final.weight"] = (1 + at::randn({kWidth}) * 0.1).to(at::kHalf);
  t[p + "ln_final.bias"] = r({kWidth});
  t[p + "text_projection"] = r({kWidth, kProj}, 0.1);  // OpenCLIP: x @ text_projection
  t[p + "logit_scale"] = at::ones({}).to(at::kHalf);
  return t;
}

// The same tensors written by hand in the HF layout ComfyUI's conversion produces.
std::unordered_map<std::string, at::Tensor> hf_tensors(const std::unordered_map<std::string, at::Tensor>& oc,
                                                       const std::string& p, const std::string& to) {
  std::unordered_map<std::string, at::Tensor> t;
  const std::string tm = to + "text_model.";
  t[tm + "embeddings.token_embedding.weight"] = oc.at(p + "token_embedding.weight").clone();
  t[tm + "embeddings.position_embedding.weight"] = oc.at(p + "positional_embedding").clone();
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string b = p + "transformer.resblocks." + std::to_string(i) + ".";
    const std::string d = tm + "encoder.layers." + std::to_string(i) + ".";
    for (const char* y : {"weight", "bias"}) {
      t[d + "layer_norm1." + y] = oc.at(b + "ln_1." + y).clone();
      t[d + "layer_norm2." + y] = oc.at(b + "ln_2." + y).clone();
      t[d + "mlp.fc1." + y] = oc.at(b + "mlp.c_fc." + y).clone();
      t[d + "mlp.fc2." + y] = oc.at(b + "mlp.c_proj." + y).clone();
      t[d + "self_attn.out_proj." + y] = oc.at(b + "attn.out_proj." + y).clone();
      auto qkv = oc.at(b + "attn.in_proj_" + y).chunk(3, 0);
      t[d + "self_attn.q_proj." + y] = qkv[0].clone();
      t[d + "self_attn.k_proj." + y] = qkv[1].clone();
      t[d + "self_attn.v_proj." + y] = qkv[2].clone();
    }
  }
  t[tm + "final_layer_norm.weight"] = oc.at(p + "ln_final.weight").clone();
  t[tm + "final_layer_norm.bias"] = oc.at(p + "ln_final.bias").clone();
  t[to + "text_projection.weight"] = oc.at(p + "text_projection").t().contiguous();
  return t;
}

TEST(ClipTextSD2, OpenClipKeysEncodeLikeTheSameWeightsInHFLayout) {
  c10::InferenceMode guard;
  auto oc = openclip_tensors("cond_stage_model.model.");
  auto converted = make_clip_from_checkpoint(WeightSet::from_tensors(oc), "SD20", {});
  auto hf = std::make_shared<const ClipModel>(WeightSet::from_tensors(hf_tensors(oc, "cond_stage_model.model.", "clip_h.transformer.")),
                                              clip_spec_for_family("SD20"), std::vector<std::filesystem::path>{});
  for (const char* text : {"a photo of a cat", "a (red:1.3) car, (sky:0.7)"}) {
    ClipEncoding a = converted->encode_from_tokens(converted->tokenize(text));
    ClipEncoding b = hf->encode_from_tokens(hf->tokenize(text));
    EXPECT_EQ(a.cond.sizes().vec(), (std::vector<int64_t>{1, 77, kWidth}));
    EXPECT_EQ(a.pooled.sizes().vec(), (std::vector<int64_t>{1, kProj}));  // projected
    EXPECT_TRUE(at::equal(a.cond, b.cond)) << text;
    // The projection is a transposed view on one side and a dense copy on the other: the matrix
    // product may take another kernel, so the last bits can differ.
    EXPECT_TRUE(at::allclose(a.pooled, b.pooled, 1e-6, 1e-6)) << text;
  }
}

TEST(ClipTextSD2, ConfigIsOpenClipH) {
  auto clip = make_clip_from_checkpoint(WeightSet::from_tensors(openclip_tensors("cond_stage_model.model.")), "SD21", {});
  const nn::ClipTextConfig& cfg = clip->config();
  EXPECT_EQ(cfg.heads, kWidth / 64);
  EXPECT_EQ(cfg.layers, kLayers);
  EXPECT_EQ(cfg.mlp, kMlp);
  EXPECT_EQ(cfg.projection_dim, kProj);
  EXPECT_EQ(cfg.activation, nn::ClipActivation::Gelu);
  EXPECT_EQ(clip->spec().default_layer_idx, -2);  // layer="penultimate"
  EXPECT_EQ(clip->weights()->patch_dtype(), at::kHalf);
  // SD2's tokenizer pads with 0 after the end token.
  TokenChunks t = clip->tokenize("a cat");
  EXPECT_EQ(t[0][3].token, 49407);
  EXPECT_EQ(t[0][4].token, 0);
  EXPECT_EQ(t[0][76].token, 0);
}

TEST(ClipTextSD2, SgmPrefixIsConvertedToo) {
  c10::InferenceMode guard;
  auto a = make_clip_from_checkpoint(WeightSet::from_tensors(openclip_tensors("cond_stage_model.model.")), "SD20", {});
  auto b = make_clip_from_checkpoint(WeightSet::from_tensors(openclip_tensors("conditioner.embedders.0.model.")), "SD20", {});
  TokenChunks t = a->tokenize("a cat");
  EXPECT_TRUE(at::equal(a->encode_from_tokens(t).cond, b->encode_from_tokens(t).cond));
}

TEST(ClipTextSD2, PenultimateLayerIsTheDefaultAndDiffersFromTheLast) {
  c10::InferenceMode guard;
  auto clip = make_clip_from_checkpoint(WeightSet::from_tensors(openclip_tensors("cond_stage_model.model.")), "SD20", {});
  TokenChunks t = clip->tokenize("a cat");
  at::Tensor def = clip->encode_from_tokens(t).cond;
  EXPECT_TRUE(at::equal(def, clip->with_layer_idx(-2)->encode_from_tokens(t).cond));
  EXPECT_FALSE(at::equal(def, clip->with_layer_idx(-1)->encode_from_tokens(t).cond));
}

TEST(ClipTextSD2, QkvSplitIsAViewOfTheCheckpointTensor) {
  auto set = WeightSet::from_tensors(openclip_tensors("cond_stage_model.model."));
  auto hf = openclip_to_hf(*set, "cond_stage_model.model.", "clip_h.transformer.");
  const at::Tensor in_proj = set->raw("cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight");
  const at::Tensor k = hf->raw("clip_h.transformer.text_model.encoder.layers.1.self_attn.k_proj.weight");
  EXPECT_EQ(k.data_ptr(), static_cast<const void*>(static_cast<const char*>(in_proj.data_ptr()) + kWidth * kWidth * 2));
  EXPECT_FALSE(hf->has("clip_h.transformer.logit_scale"));
}

}  // namespace
}  // namespace comfy
