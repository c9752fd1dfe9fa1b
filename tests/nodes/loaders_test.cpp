// The loaders of nodes/loaders_extra.cpp: CLIPLoader on text-encoder files in every accepted
// layout (cut from the tiny checkpoints, or written by CLIPSave) encoding as the checkpoint's CLIP
// and as ComfyUI recorded it; SD2 (OpenCLIP-H) files; clear errors for missing files, files that
// are no text encoder and families we do not have; DualCLIPLoader; CheckpointLoader's config;
// UNETLoader with weight_dtype.
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

const fs::path kTiny = kFixtureModels / "checkpoints" / "tiny_sd15.safetensors";

// The tensors of `file` under `from`, renamed to `to` + rest.
std::vector<std::pair<std::string, at::Tensor>> cut(const fs::path& file, const std::string& from, const std::string& to) {
  auto f = SafetensorsFile::open(file);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const std::string& k : f->keys())
    if (k.compare(0, from.size(), from) == 0) out.emplace_back(to + k.substr(from.size()), f->tensor(k));
  return out;
}

ClipEncoding encode(const ClipModel& clip, const std::string& text) { return clip.encode_from_tokens(clip.tokenize(text)); }

void expect_same_encoding(const ClipModel& a, const ClipModel& b) {
  for (const char* text : {"a photo of a cat", "(masterpiece:1.2), a dog"}) {
    ClipEncoding x = encode(a, text), y = encode(b, text);
    EXPECT_TRUE(at::equal(x.cond, y.cond)) << text;
    EXPECT_TRUE(at::equal(x.pooled, y.pooled)) << text;
  }
}

Value load_clip(ModelEngine& e, const std::string& name, const std::string& type = "stable_diffusion") {
  return e.one("CLIPLoader", {{"clip_name", strv(name)}, {"type", strv(type)}});
}

// The ComfyError a call throws (its type and message), or a failure.
std::pair<std::string, std::string> error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ComfyError& e) {
    return {e.type(), e.what()};
  }
  ADD_FAILURE() << "no error";
  return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------- CLIPLoader, SD1

class ClipLayouts : public ::testing::TestWithParam<std::string> {};

TEST_P(ClipLayouts, SD1TextEncoderFileEncodesLikeTheCheckpoint) {
  c10::InferenceMode guard;
  ModelEngine e;
  save_safetensors(e.models("text_encoders") / "clip_l.safetensors",
                   cut(kTiny, "cond_stage_model.transformer.", GetParam()));
  Value clip_v = load_clip(e, "clip_l.safetensors");
  const ClipModel& clip = clip_of(clip_v);
  NodeOutput ckpt = e.call("CheckpointLoaderSimple", {{"ckpt_name", strv("tiny_sd15.safetensors")}});
  EXPECT_EQ(clip.spec().name, "clip_l");
  expect_same_encoding(clip, clip_of(ckpt.result[1]));
}

INSTANTIATE_TEST_SUITE_P(CLIPLoader, ClipLayouts,
                         ::testing::Values("", "cond_stage_model.transformer.", "transformer."),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param.empty() ? std::string("text_model") : info.param.size() > 15 ? std::string("cond_stage_model") : std::string("transformer");
                         });

TEST(CLIPLoader, MatchesComfyUIsRecordedEncoding) {
  c10::InferenceMode guard;
  ModelEngine e;
  save_safetensors(e.models("text_encoders") / "clip_l.safetensors", cut(kTiny, "cond_stage_model.transformer.", ""));
  Value clip = load_clip(e, "clip_l.safetensors");
  const auto ref = read_safetensors_f32((fs::path(COMFY_TEST_DATA) / "reference/stages/clip_plain.safetensors").string());
  ClipEncoding enc = encode(clip_of(clip), "a photo of a cat");
  EXPECT_LE((enc.cond - ref.at("cond")).abs().max().item<double>(), 1e-4);
  EXPECT_LE((enc.pooled - ref.at("pooled_output")).abs().max().item<double>(), 1e-4);
}

TEST(CLIPLoader, LoadsWhatCLIPSaveWrote) {
  c10::InferenceMode guard;
  ModelEngine e;
  NodeOutput ckpt = e.call("CheckpointLoaderSimple", {{"ckpt_name", strv("tiny_sd15.safetensors")}});
  Value merged = e.one("CLIPMergeSimple", {{"clip1", ckpt.result[1]}, {"clip2", ckpt.result[1]}, {"ratio", numv(0.5)}});
  e.call("CLIPSave", {{"clip", merged}, {"filename_prefix", strv("clip/ComfyUI")}});
  const fs::path saved = e.output() / "clip" / "ComfyUI_clip_l_00001_.safetensors";
  ASSERT_TRUE(fs::exists(saved));
  auto f = SafetensorsFile::open(saved);
  EXPECT_EQ(f->metadata()["format"], "pt");
  EXPECT_EQ(f->info("logit_scale").dtype, "F32");
  EXPECT_EQ(f->info("text_projection.weight").dtype, "F16");
  EXPECT_FALSE(f->contains("text_model.embeddings.position_ids"));
  fs::copy_file(saved, e.models("text_encoders") / "saved.safetensors");
  expect_same_encoding(clip_of(load_clip(e, "saved.safetensors")), clip_of(merged));
}

TEST(CLIPLoader, OtherTypesOfACLIPLFileStillBuildSD1sEncoder) {
  c10::InferenceMode guard;
  ModelEngine e;
  save_safetensors(e.models("text_encoders") / "clip_l.safetensors", cut(kTiny, "cond_stage_model.transformer.", ""));
  EXPECT_EQ(clip_of(load_clip(e, "clip_l.safetensors", "wan")).spec().name, "clip_l");
  auto [type, message] = error_of([&] { load_clip(e, "clip_l.safetensors", "sd3"); });
  EXPECT_EQ(type, "ValueError");
  EXPECT_TRUE(contains(message, "SD3") && contains(message, "not supported")) << message;
}

// ---------------------------------------------------------------- CLIPLoader, SD2

TEST(CLIPLoader, SD2OpenCLIPFileEncodesLikeTheCheckpoint) {
  c10::InferenceMode guard;
  ModelEngine e;
  const fs::path sd2 = e.base / "sd2.safetensors";
  make_checkpoint("sd2", "tiny", at::kHalf, 7, sd2);
  save_safetensors(e.models("text_encoders") / "open_clip.safetensors", cut(sd2, "cond_stage_model.model.", ""));
  Value clip_v = load_clip(e, "open_clip.safetensors");
  const ClipModel& clip = clip_of(clip_v);
  LoadedCheckpoint ckpt = load_checkpoint(sd2);
  ASSERT_TRUE(ckpt.clip);
  EXPECT_EQ(clip.spec().name, "clip_h");
  expect_same_encoding(clip, *ckpt.clip);
}

TEST(CheckpointSave, SD2CheckpointRoundTripsThroughTheOpenCLIPLayout) {
  c10::InferenceMode guard;
  ModelEngine e;
  const fs::path sd2 = e.base / "sd2.safetensors";
  make_checkpoint("sd2", "tiny", at::kHalf, 7, sd2);
  LoadedCheckpoint ckpt = load_checkpoint(sd2);
  e.call("CheckpointSave", {{"model", Value(std::static_pointer_cast<const Object>(ckpt.model))},
                            {"clip", Value(std::static_pointer_cast<const Object>(ckpt.clip))},
                            {"vae", Value(std::static_pointer_cast<const Object>(ckpt.vae))},
                            {"filename_prefix", strv("sd2")}});
  const fs::path saved = e.output() / "sd2_00001_.safetensors";
  auto original = SafetensorsFile::open(sd2), ours = SafetensorsFile::open(saved);
  // The text encoder goes back to the keys it came from (OpenCLIP, fp16).
  for (const std::string& k : original->keys()) {
    if (k.compare(0, 23, "cond_stage_model.model.") != 0 || k.find("logit_scale") != std::string::npos) continue;
    ASSERT_TRUE(ours->contains(k)) << k;
    EXPECT_TRUE(at::equal(ours->tensor(k), original->tensor(k))) << k;
  }
  LoadedCheckpoint back = load_checkpoint(saved);
  expect_same_encoding(*back.clip, *ckpt.clip);
}

// ---------------------------------------------------------------- bad input

TEST(CLIPLoader, MissingFileIsNamed) {
  ModelEngine e;
  auto [type, message] = error_of([&] { load_clip(e, "nope.safetensors"); });
  EXPECT_EQ(type, "FileNotFoundError");
  EXPECT_TRUE(contains(message, "nope.safetensors")) << message;
}

TEST(CLIPLoader, AVAEIsRefusedSayingWhatItIs) {
  ModelEngine e;
  fs::copy_file(kFixtureModels / "vae" / "tiny_vae.safetensors", e.models("text_encoders") / "tiny_vae.safetensors");
  auto [type, message] = error_of([&] { load_clip(e, "tiny_vae.safetensors"); });
  EXPECT_EQ(type, "ValueError");
  EXPECT_TRUE(contains(message, "tiny_vae.safetensors") && contains(message, "VAE")) << message;
}

TEST(CLIPLoader, ACorruptFileIsNamed) {
  ModelEngine e;
  std::ofstream(e.models("text_encoders") / "broken.safetensors") << "not a safetensors file";
  auto [type, message] = error_of([&] { load_clip(e, "broken.safetensors"); });
  EXPECT_TRUE(contains(message, "broken.safetensors")) << type << ": " << message;
}

TEST(DualCLIPLoader, RefusesPairsWeCannotBuildNamingThem) {
  ModelEngine e;
  save_safetensors(e.models("text_encoders") / "clip_l.safetensors", cut(kTiny, "cond_stage_model.transformer.", ""));
  auto [type, message] = error_of([&] {
    e.call("DualCLIPLoader", {{"clip_name1", strv("clip_l.safetensors")}, {"clip_name2", strv("clip_l.safetensors")}, {"type", strv("sdxl")}});
  });
  EXPECT_EQ(type, "ValueError");
  EXPECT_TRUE(contains(message, "sdxl") && contains(message, "not supported")) << message;
  auto missing = error_of([&] {
    e.call("DualCLIPLoader", {{"clip_name1", strv("clip_l.safetensors")}, {"clip_name2", strv("t5.safetensors")}, {"type", strv("flux")}});
  });
  EXPECT_EQ(missing.first, "FileNotFoundError");
}

// ---------------------------------------------------------------- CheckpointLoader

TEST(CheckpointLoader, ConfigSetsVPredictionAndTheCLIPLayer) {
  c10::InferenceMode guard;
  ModelEngine e;
  std::ofstream(e.models("configs") / "v.yaml") << "model:\n  params:\n    parameterization: \"v\"\n"
                                                   "    cond_stage_config:\n      params:\n        layer: hidden\n"
                                                   "        layer_idx: -2\n";
  std::ofstream(e.models("configs") / "eps.yaml") << "model:\n  params:\n    cond_stage_config:\n      target: x\n";
  NodeOutput v = e.call("CheckpointLoader", {{"config_name", strv("v.yaml")}, {"ckpt_name", strv("tiny_sd15.safetensors")}});
  EXPECT_EQ(model_of(v.result[0]).sampling.prediction(), Prediction::V);
  EXPECT_EQ(clip_of(v.result[1]).layer_idx(), std::optional<int>(-2));
  NodeOutput eps = e.call("CheckpointLoader", {{"config_name", strv("eps.yaml")}, {"ckpt_name", strv("tiny_sd15.safetensors")}});
  EXPECT_EQ(model_of(eps.result[0]).sampling.prediction(), Prediction::Eps);
  EXPECT_EQ(clip_of(eps.result[1]).layer_idx(), std::nullopt);
  auto [type, message] = error_of([&] {
    e.call("CheckpointLoader", {{"config_name", strv("none.yaml")}, {"ckpt_name", strv("tiny_sd15.safetensors")}});
  });
  EXPECT_TRUE(contains(message, "none.yaml")) << message;
}

// ---------------------------------------------------------------- UNETLoader

TEST(UNETLoader, LoadsWhatModelSaveWrote) {
  c10::InferenceMode guard;
  ModelEngine e;
  NodeOutput ckpt = e.call("CheckpointLoaderSimple", {{"ckpt_name", strv("tiny_sd15.safetensors")}});
  e.call("ModelSave", {{"model", ckpt.result[0]}, {"filename_prefix", strv("unet")}});
  fs::copy_file(e.output() / "unet_00001_.safetensors", e.models("diffusion_models") / "unet.safetensors");
  Value ours_v = e.one("UNETLoader", {{"unet_name", strv("unet.safetensors")}, {"weight_dtype", strv("default")}});
  const DiffusionModel& ours = model_of(ours_v);
  const DiffusionModel& original = model_of(ckpt.result[0]);
  for (const std::string& k : original.weights.keys()) ASSERT_TRUE(at::equal(ours.weights(k), original.weights(k))) << k;
}

// Every finite fp8 value, from the codes (decoded by io's fp8_to_float32), sorted.
at::Tensor fp8_values(const std::string& dtype) {
  at::Tensor codes = at::arange(256, at::kLong).to(at::kByte);
  at::Tensor v = fp8_to_float32(codes, dtype);
  return std::get<0>(at::sort(v.masked_select(at::isfinite(v))));
}

TEST(UNETLoader, Fp8WeightDtypesRoundEachWeightToTheNearestFp8Value) {
  c10::InferenceMode guard;
  ModelEngine e;
  std::vector<std::pair<std::string, at::Tensor>> unet = cut(kTiny, "model.diffusion_model.", "");
  // Values beyond the fp8 ranges: e4m3fn has no infinity (NaN), e5m2 saturates to inf.
  for (auto& [k, t] : unet)
    if (k == "out.2.bias") t = at::tensor({500.0f, -1e5f, 1e-9f, 0.1f}, at::kFloat);
  save_safetensors(e.models("diffusion_models") / "unet.safetensors", unet);
  Value plain_v = e.one("UNETLoader", {{"unet_name", strv("unet.safetensors")}, {"weight_dtype", strv("default")}});
  const DiffusionModel& plain = model_of(plain_v);
  for (const auto& [option, dtype] : {std::pair("fp8_e4m3fn", "F8_E4M3"), std::pair("fp8_e5m2", "F8_E5M2")}) {
    Value m_v = e.one("UNETLoader", {{"unet_name", strv("unet.safetensors")}, {"weight_dtype", strv(option)}});
  const DiffusionModel& m = model_of(m_v);
    at::Tensor table = fp8_values(dtype);
    for (const std::string& k : {"input_blocks.0.0.weight", "middle_block.1.proj_in.weight", "time_embed.0.bias"}) {
      at::Tensor orig = plain.weights(k).reshape({-1}), ours = m.weights(k).reshape({-1});
      // On the fp8 grid, and no farther from the original than the nearest grid value.
      at::Tensor dist = (orig.unsqueeze(1) - table.unsqueeze(0)).abs();
      at::Tensor nearest = std::get<0>(dist.min(1));
      EXPECT_TRUE(at::isin(ours, table).all().item<bool>()) << option << " " << k;
      EXPECT_TRUE(((ours - orig).abs() <= nearest).all().item<bool>()) << option << " " << k;
      EXPECT_GT((ours - orig).abs().max().item<float>(), 0.0f) << option << " " << k;
    }
    at::Tensor b = m.weights("out.2.bias");
    if (std::string(option) == "fp8_e4m3fn") {
      EXPECT_TRUE(std::isnan(b[0].item<float>()));
      EXPECT_TRUE(std::isnan(b[1].item<float>()));
      EXPECT_EQ(b[3].item<float>(), 0.1015625f);
    } else {
      EXPECT_EQ(b[0].item<float>(), 512.0f);
      EXPECT_EQ(b[1].item<float>(), -std::numeric_limits<float>::infinity());
      EXPECT_EQ(b[3].item<float>(), 0.09375f);
    }
    EXPECT_EQ(b[2].item<float>(), 0.0f);
  }
}

}  // namespace
}  // namespace comfy::testing
