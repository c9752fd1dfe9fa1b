// The merge and save nodes (nodes/model_merging.cpp, nodes/model_saving.cpp): the files ComfyUI
// 0.8.0 wrote for merged checkpoints and for CLIPSave / VAESave / ModelSave (tests/fixtures/merging,
// see its README) against ours from the same workflows; merge ratios 0 and 1; subtract then add;
// saved checkpoints loading back with the merged weights and their metadata.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <fstream>

#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/checkpoint_generator.h"
#include "models/clip_model.h"
#include "models/diffusion_model.h"
#include "support/model_engine.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

const fs::path kMerging = fs::path(COMFY_TEST_DATA) / "merging";

const json& recorded() {
  static const json j = [] {
    std::ifstream f(kMerging / "cases.json");
    return json::parse(f);
  }();
  return j;
}

std::vector<std::string> case_names() {
  std::vector<std::string> out;
  for (auto& [k, v] : recorded()["cases"].items()) out.push_back(k);
  return out;
}

Value obj(std::shared_ptr<const Object> o) { return Value(std::move(o)); }

struct Pair {
  ModelEngine e;
  Value a_model, a_clip, a_vae, b_model, b_clip;
  Pair() {
    NodeOutput a = e.call("CheckpointLoaderSimple", {{"ckpt_name", strv("tiny_sd15.safetensors")}});
    NodeOutput b = e.call("CheckpointLoaderSimple", {{"ckpt_name", strv("tiny_sd15_b.safetensors")}});
    a_model = a.result[0], a_clip = a.result[1], a_vae = a.result[2];
    b_model = b.result[0], b_clip = b.result[1];
  }
};

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// ---------------------------------------------------------------- ComfyUI's files

class RecordedMerge : public ::testing::TestWithParam<std::string> {};

TEST_P(RecordedMerge, SavedFilesMatchComfyUI) {
  c10::InferenceMode guard;
  const json& c = recorded()["cases"][GetParam()];
  ModelEngine e;
  e.run(c["workflow"], json{{"extra_pnginfo", recorded()["extra_pnginfo"]}});
  const auto digest = read_safetensors_f32((kMerging / (GetParam() + ".safetensors")).string());
  for (auto& [rel, theirs] : c["files"].items()) {
    SCOPED_TRACE(rel);
    const fs::path ours_path = e.output() / rel;
    ASSERT_TRUE(fs::exists(ours_path)) << "we wrote no " << rel;
    auto ours = SafetensorsFile::open(ours_path);
    // Metadata: the same keys and values (the prompt is ours, as json.dumps writes it).
    json meta = ours->metadata();
    EXPECT_EQ(meta.size(), theirs["metadata"].size()) << meta.dump();
    for (auto& [k, v] : theirs["metadata"].items()) {
      ASSERT_TRUE(meta.contains(k)) << k;
      if (k == "prompt") EXPECT_EQ(json::parse(meta[k].get<std::string>()), c["workflow"]);
      else EXPECT_EQ(meta[k], v) << k;
    }
    EXPECT_EQ(ours->keys().size(), theirs["tensors"].size());
    double worst = 0;
    for (auto& [k, t] : theirs["tensors"].items()) {
      ASSERT_TRUE(ours->contains(k)) << "missing " << k;
      const TensorInfo& info = ours->info(k);
      EXPECT_EQ(info.dtype, t["dtype"].get<std::string>()) << k;
      EXPECT_EQ(info.shape, t["shape"].get<std::vector<int64_t>>()) << k;
      at::Tensor flat = ours->tensor(k).to(at::kDouble).reshape({-1});
      const int64_t n = flat.numel();
      const double sum = flat.sum().item<double>(), their_sum = t["sum"].get<double>();
      EXPECT_NEAR(sum, their_sum, 1e-6 * (1 + std::abs(their_sum)) + 1e-9 * n) << k;
      const at::Tensor& samples = digest.at(rel + ":" + k);
      for (int64_t j = 0; j < samples.numel(); ++j) {
        const int64_t i = n <= 32 ? j : (j * (n - 1)) / 31;
        const double d = std::abs(flat[i].item<double>() - samples[j].item<double>());
        worst = std::max(worst, d);
        EXPECT_LE(d, 0.0) << k << " [" << i << "]";
      }
    }
    RecordProperty("max_abs_" + rel, std::to_string(worst));
  }
}

INSTANTIATE_TEST_SUITE_P(ModelMerging, RecordedMerge, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// ---------------------------------------------------------------- merge identities

TEST(ModelMergeSimple, RatioOneIsModel1AndRatioZeroIsModel2) {
  c10::InferenceMode guard;
  Pair p;
  const DiffusionModel& a = model_of(p.a_model);
  const DiffusionModel& b = model_of(p.b_model);
  Value one_v = p.e.one("ModelMergeSimple", {{"model1", p.a_model}, {"model2", p.b_model}, {"ratio", numv(1.0)}});
  const DiffusionModel& one = model_of(one_v);
  Value zero_v = p.e.one("ModelMergeSimple", {{"model1", p.a_model}, {"model2", p.b_model}, {"ratio", numv(0.0)}});
  const DiffusionModel& zero = model_of(zero_v);
  int checked = 0;
  for (const std::string& k : a.weights.keys()) {
    EXPECT_TRUE(at::equal(one.weights(k), a.weights(k))) << k;
    EXPECT_TRUE(at::equal(zero.weights(k), b.weights(k))) << k;
    ++checked;
  }
  EXPECT_EQ(checked, 324);
  // Merging is lazy and leaves the inputs alone.
  EXPECT_EQ(model_of(p.a_model).weights.set, a.weights.set);
}

TEST(ModelMergeSimple, IsTheWeightedSumInF32) {
  c10::InferenceMode guard;
  Pair p;
  Value m_v = p.e.one("ModelMergeSimple", {{"model1", p.a_model}, {"model2", p.b_model}, {"ratio", numv(0.3)}});
  const DiffusionModel& m = model_of(m_v);
  const std::string k = "input_blocks.1.1.proj_in.weight";
  at::Tensor expected = model_of(p.a_model).weights(k) * 0.3 + model_of(p.b_model).weights(k) * (1.0 - 0.3);
  EXPECT_TRUE(at::equal(m.weights(k), expected));
  EXPECT_EQ(m.weights.set->raw("model.diffusion_model." + k).scalar_type(), at::kHalf);  // the file's tensor, unchanged
}

TEST(CLIPMergeSimple, RatioOneIsClip1AndRatioZeroIsClip2) {
  c10::InferenceMode guard;
  Pair p;
  Value one_v = p.e.one("CLIPMergeSimple", {{"clip1", p.a_clip}, {"clip2", p.b_clip}, {"ratio", numv(1.0)}});
  const ClipModel& one = clip_of(one_v);
  Value zero_v = p.e.one("CLIPMergeSimple", {{"clip1", p.a_clip}, {"clip2", p.b_clip}, {"ratio", numv(0.0)}});
  const ClipModel& zero = clip_of(zero_v);
  for (const std::string& k : clip_of(p.a_clip).weights()->keys()) {
    if (k.find("position_ids") != std::string::npos) continue;
    EXPECT_TRUE(at::equal(one.weights()->get(k), clip_of(p.a_clip).weights()->get(k))) << k;
    EXPECT_TRUE(at::equal(zero.weights()->get(k), clip_of(p.b_clip).weights()->get(k))) << k;
  }
  // position_ids are never merged.
  const std::string ids = "clip_l.transformer.text_model.embeddings.position_ids";
  EXPECT_TRUE(at::equal(zero.weights()->get(ids, at::kLong), clip_of(p.a_clip).weights()->get(ids, at::kLong)));
}

TEST(ModelMergeSubtract, ThenModelMergeAddRecoversModel1) {
  c10::InferenceMode guard;
  Pair p;
  Value diff = p.e.one("ModelMergeSubtract", {{"model1", p.a_model}, {"model2", p.b_model}, {"multiplier", numv(1.0)}});
  Value back_v = p.e.one("ModelMergeAdd", {{"model1", diff}, {"model2", p.b_model}});
  const DiffusionModel& back = model_of(back_v);
  const DiffusionModel& a = model_of(p.a_model);
  double worst = 0;
  for (const std::string& k : a.weights.keys()) worst = std::max(worst, max_abs(back.weights(k), a.weights(k)));
  EXPECT_LE(worst, 1e-6);  // (a - b) + b in f32
  EXPECT_GT(max_abs(model_of(diff).weights("out.2.weight"), a.weights("out.2.weight")), 1e-3);
}

TEST(ModelMergeBlocks, EachBlockTakesItsOwnRatio) {
  c10::InferenceMode guard;
  Pair p;
  Value m_v = p.e.one("ModelMergeBlocks", {{"model1", p.a_model}, {"model2", p.b_model},
                                                                  {"input", numv(1.0)}, {"middle", numv(0.0)}, {"out", numv(1.0)}});
  const DiffusionModel& m = model_of(m_v);
  const DiffusionModel& a = model_of(p.a_model);
  const DiffusionModel& b = model_of(p.b_model);
  EXPECT_TRUE(at::equal(m.weights("input_blocks.1.0.in_layers.2.weight"), a.weights("input_blocks.1.0.in_layers.2.weight")));
  EXPECT_TRUE(at::equal(m.weights("middle_block.0.in_layers.2.weight"), b.weights("middle_block.0.in_layers.2.weight")));
  EXPECT_TRUE(at::equal(m.weights("output_blocks.0.0.in_layers.2.weight"), a.weights("output_blocks.0.0.in_layers.2.weight")));
  // time_embed matches no block: it takes the first ratio (input).
  EXPECT_TRUE(at::equal(m.weights("time_embed.0.weight"), a.weights("time_embed.0.weight")));
}

// ---------------------------------------------------------------- saving

TEST(CheckpointSave, SavedCheckpointLoadsBackWithTheMergedWeights) {
  c10::InferenceMode guard;
  Pair p;
  Value model = p.e.one("ModelMergeSimple", {{"model1", p.a_model}, {"model2", p.b_model}, {"ratio", numv(0.3)}});
  Value clip = p.e.one("CLIPMergeSimple", {{"clip1", p.a_clip}, {"clip2", p.b_clip}, {"ratio", numv(0.6)}});
  json prompt = {{"1", {{"class_type", "X"}, {"inputs", json::object()}}}};
  for (int i = 0; i < 2; ++i)
    p.e.call("CheckpointSave", {{"model", model}, {"clip", clip}, {"vae", p.a_vae}, {"filename_prefix", strv("checkpoints/merged")},
                                {"prompt", Value(prompt)}, {"extra_pnginfo", Value(json{{"workflow", {{"a", 1}}}})}});
  const fs::path first = p.e.output() / "checkpoints" / "merged_00001_.safetensors";
  ASSERT_TRUE(fs::exists(first));
  ASSERT_TRUE(fs::exists(p.e.output() / "checkpoints" / "merged_00002_.safetensors"));  // the counter moves on
  for (auto& entry : fs::directory_iterator(p.e.output() / "checkpoints"))
    EXPECT_EQ(entry.path().extension(), ".safetensors") << "left behind: " << entry.path();

  auto file = SafetensorsFile::open(first);
  EXPECT_EQ(file->metadata()["prompt"], "{\"1\": {\"class_type\": \"X\", \"inputs\": {}}}");
  EXPECT_EQ(file->metadata()["workflow"], "{\"a\": 1}");
  EXPECT_EQ(file->metadata()["modelspec.predict_key"], "epsilon");

  LoadedCheckpoint back = load_checkpoint(first);
  const DiffusionModel& merged = model_of(model);
  for (const std::string& k : merged.weights.keys())
    ASSERT_TRUE(at::equal(back.model->weights(k), merged.weights(k))) << k;
  EXPECT_EQ(back.model->family, "SD15");
  for (const std::string& k : clip_of(clip).weights()->keys())
    if (k.find("position_ids") == std::string::npos)
      ASSERT_TRUE(at::equal(back.clip->weights()->get(k), clip_of(clip).weights()->get(k))) << k;
  for (const std::string& k : vae_of(p.a_vae).weights().keys())
    ASSERT_TRUE(at::equal(back.vae->weights()(k), vae_of(p.a_vae).weights()(k))) << k;
  const std::string text = "a photo of a cat";
  EXPECT_TRUE(at::equal(back.clip->encode_from_tokens(back.clip->tokenize(text)).cond,
                        clip_of(clip).encode_from_tokens(clip_of(clip).tokenize(text)).cond));
}

TEST(CheckpointSave, AVPredictionModelIsSavedAsOne) {
  c10::InferenceMode guard;
  ModelEngine e;
  const fs::path sd2v = e.base / "sd2v.safetensors";
  make_checkpoint("sd2-v", "tiny", at::kHalf, 11, sd2v);
  LoadedCheckpoint ckpt = load_checkpoint(sd2v);
  ASSERT_EQ(ckpt.model->sampling.prediction(), Prediction::V);
  e.call("CheckpointSave", {{"model", obj(ckpt.model)}, {"clip", obj(ckpt.clip)}, {"vae", obj(ckpt.vae)},
                            {"filename_prefix", strv("v")}});
  const fs::path saved = e.output() / "v_00001_.safetensors";
  auto file = SafetensorsFile::open(saved);
  EXPECT_EQ(file->metadata()["modelspec.predict_key"], "v");
  ASSERT_TRUE(file->contains("v_pred"));
  EXPECT_EQ(file->info("v_pred").shape, std::vector<int64_t>{0});
  LoadedCheckpoint back = load_checkpoint(saved);
  EXPECT_EQ(back.model->family, ckpt.model->family);
  EXPECT_EQ(back.model->sampling.prediction(), Prediction::V);
}

TEST(ModelSave, WithMetadataDisabledWritesOnlyThePredictionKey) {
  c10::InferenceMode guard;
  Pair p;
  p.e.services.options.disable_metadata = true;
  p.e.call("ModelSave", {{"model", p.a_model}, {"filename_prefix", strv("diffusion_models/ComfyUI")},
                         {"prompt", Value(json::object())}, {"extra_pnginfo", Value(json{{"workflow", 1}})}});
  auto file = SafetensorsFile::open(p.e.output() / "diffusion_models" / "ComfyUI_00001_.safetensors");
  EXPECT_EQ(file->metadata(), json({{"modelspec.predict_key", "epsilon"}}));
  EXPECT_EQ(file->keys().size(), 324u);
}

TEST(CheckpointSave, APrefixOutsideTheOutputFolderIsRefused) {
  Pair p;
  try {
    p.e.call("CheckpointSave", {{"model", p.a_model}, {"clip", p.a_clip}, {"vae", p.a_vae}, {"filename_prefix", strv("../escape")}});
    FAIL() << "saved outside the output folder";
  } catch (const ComfyError& err) {
    EXPECT_NE(std::string(err.what()).find("output"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace comfy::testing
