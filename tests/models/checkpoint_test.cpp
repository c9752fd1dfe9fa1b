// Checkpoint loading and family detection (ComfyUI's CheckpointLoaderSimple and
// model_detection), and the random-weight checkpoint generator.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "io/safetensors.h"
#include "models/folder_paths.h"
#include "models/checkpoint.h"
#include "models/checkpoint_generator.h"
#include "models/model_detection.h"
#include "nodes/all.h"
#include "support/safetensors_read.h"
#include "support/temp_files.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;
using comfy::test::TempDir;
using comfy::test::read_bytes;
const std::string kData = COMFY_TEST_DATA;
const std::string kTiny = kData + "/models/checkpoints/tiny_sd15.safetensors";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ComfyError& e) {
    return e.what();
  }
  return "<no ComfyError>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ------------------------------------------------------------------ detection and loading

TEST(ModelDetection, TinySd15IsAnEpsSd15) {
  auto set = load_weight_file(kTiny);
  EXPECT_EQ(unet_prefix_of(*set), "model.diffusion_model.");
  ModelDetection d = detect_model(set, "model.diffusion_model.", kTiny);
  EXPECT_EQ(d.family, "SD15");
  EXPECT_EQ(d.prediction, Prediction::Eps);
  EXPECT_FALSE(d.inpaint);
  EXPECT_EQ(d.unet.context_dim, 128);
  EXPECT_EQ(d.unet.num_heads, 8);
}

TEST(CheckpointLoader, LoadsModelClipAndVaeOfTinySd15) {
  c10::InferenceMode guard;
  LoadedCheckpoint ckpt = load_checkpoint(kTiny);
  ASSERT_TRUE(ckpt.model);
  EXPECT_TRUE(ckpt.clip);
  EXPECT_TRUE(ckpt.vae);
  EXPECT_EQ(ckpt.model->family, "SD15");
  EXPECT_EQ(ckpt.model->sampling.prediction(), Prediction::Eps);
  EXPECT_DOUBLE_EQ(ckpt.model->latent_format.scale_factor, 0.18215);
  EXPECT_EQ(ckpt.model->weights.prefix, "model.diffusion_model.");
  EXPECT_EQ(ckpt.model->unet.model_channels, 32);
}

// BaseModel.apply_model on the loaded MODEL gives ComfyUI's denoised (x - eps*sigma).
TEST(CheckpointLoader, ApplyModelMatchesComfyUIDenoised) {
  c10::InferenceMode guard;
  LoadedCheckpoint ckpt = load_checkpoint(kTiny, CheckpointOptions{false, false, {}});
  for (const auto& [name, atol] : std::vector<std::pair<std::string, double>>{{"unet_eps_sigma_max", 4e-4},
                                                                              {"unet_eps_sigma_1_batch2", 3e-5}}) {
    auto ref = testing::read_safetensors_f32(kData + "/reference/stages/" + name + ".safetensors");
    const at::Tensor& x = ref.at("x");
    at::Tensor sigma = ref.at("sigma").reshape({-1});
    if (sigma.numel() == 1) sigma = sigma.expand({x.size(0)});
    ModelConds conds;
    conds.c_crossattn = ref.at("context");
    at::Tensor denoised = ckpt.model->apply_model(x, sigma, conds);
    EXPECT_LE((denoised - ref.at("denoised")).abs().max().item<double>(), atol) << name;
  }
}

TEST(CheckpointLoader, RefusesAVaeFileNamingWhereItBelongs) {
  std::string msg = error_of([] { load_checkpoint(kData + "/models/vae/tiny_vae.safetensors"); });
  EXPECT_TRUE(contains(msg, "Could not detect model type")) << msg;
  EXPECT_TRUE(contains(msg, "This is a VAE; it belongs in models/vae")) << msg;
}

TEST(CheckpointLoader, RefusesALoraFileNamingWhereItBelongs) {
  std::string msg = error_of([] { load_checkpoint(kData + "/models/loras/tiny_lora.safetensors"); });
  EXPECT_TRUE(contains(msg, "This is a LoRA; it belongs in models/loras")) << msg;
  EXPECT_TRUE(contains(msg, "HINT: This seems to be a Lora file")) << msg;  // ComfyUI's hint (file name)
}

TEST(CheckpointLoader, RefusesAnEmbeddingFile) {
  std::string msg = error_of([] { load_checkpoint(kData + "/models/embeddings/tiny_emb.safetensors"); });
  EXPECT_TRUE(contains(msg, "textual-inversion embedding")) << msg;
}

TEST(CheckpointLoader, RefusesATruncatedFileNamingIt) {
  TempDir dir;
  const std::string bytes = read_bytes(kTiny);
  fs::path cut = dir.path / "cut.safetensors";
  std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  std::string msg = error_of([&] { load_checkpoint(cut); });
  EXPECT_TRUE(contains(msg, "cut.safetensors")) << msg;
}

TEST(CheckpointLoader, RefusesAFileThatIsNotSafetensors) {
  TempDir dir;
  fs::path junk = dir.path / "junk.safetensors";
  std::ofstream(junk, std::ios::binary) << "this is not a model file at all, just some text";
  std::string msg = error_of([&] { load_checkpoint(junk); });
  EXPECT_TRUE(contains(msg, "junk.safetensors")) << msg;
}

// Pickled checkpoints go through the restricted unpickler (tests/unit/io/pickle_test.cpp); a
// broken one is a clear error naming the file.
TEST(CheckpointLoader, RefusesACorruptPickledCheckpoint) {
  TempDir dir;
  fs::path ckpt = dir.path / "model.ckpt";
  std::ofstream(ckpt, std::ios::binary) << "PK";
  std::string msg = error_of([&] { load_checkpoint(ckpt); });
  EXPECT_TRUE(contains(msg, "PyTorch")) << msg;
  EXPECT_TRUE(contains(msg, "model.ckpt")) << msg;
}

TEST(CheckpointLoader, MissingFileIsFileNotFound) {
  try {
    load_checkpoint(kData + "/models/checkpoints/does_not_exist.safetensors");
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "FileNotFoundError");
  }
}

// The node: ckpt_name is looked up in models/checkpoints; the outputs are MODEL, CLIP and VAE.
TEST(CheckpointLoaderSimpleNode, LoadsTheNamedCheckpointFromTheCheckpointsFolder) {
  Registry registry;
  register_loaders(registry);
  FolderPaths folders(kData);  // models/checkpoints = tests/fixtures/models/checkpoints
  Services services;
  services.folders = &folders;
  std::atomic<bool> interrupt{false};
  ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {});
  NodeInputs in;
  in.values["ckpt_name"] = {Value(json("tiny_sd15.safetensors"))};
  NodeOutput out = registry.find("CheckpointLoaderSimple")->function(ctx, in);
  ASSERT_EQ(out.result.size(), 3u);
  EXPECT_EQ(model_of(out.result[0]).family, "SD15");
  EXPECT_EQ(out.result[1].object()->repr(), "<comfy.sd.CLIP object>");
  EXPECT_EQ(vae_of(out.result[2]).repr(), "<comfy.sd.VAE object>");
  in.values["ckpt_name"] = {Value(json("missing.safetensors"))};
  EXPECT_THROW(registry.find("CheckpointLoaderSimple")->function(ctx, in), ComfyError);
}

// ------------------------------------------------------------------ families from layouts

std::shared_ptr<const WeightSet> unet_set(const GenUNetSpec& spec, const std::string& prefix, bool v = false) {
  std::unordered_map<std::string, at::Tensor> m;
  for (auto& [name, t] : generate_tensors(unet_layout(spec, prefix, v), at::kFloat, 1)) m.emplace(name, t);
  return WeightSet::from_tensors(std::move(m));
}

GenUNetSpec tiny_unet(bool sd2) { return checkpoint_spec(sd2 ? "sd2" : "sd15", "tiny").unet; }

TEST(ModelDetection, InpaintingUNetsKeepTheirFamilyAndAreEps) {
  GenUNetSpec s15 = tiny_unet(false);
  s15.in_channels = 9;
  ModelDetection d = detect_model(unet_set(s15, "model.diffusion_model."), "model.diffusion_model.", "x");
  EXPECT_EQ(d.family, "SD15");
  EXPECT_TRUE(d.inpaint);
  GenUNetSpec s2 = tiny_unet(true);
  s2.in_channels = 9;
  // SD2.0 inpainting models are never v-prediction, whatever the norm1 bias says.
  d = detect_model(unet_set(s2, "model.diffusion_model.", /*v=*/true), "model.diffusion_model.", "x");
  EXPECT_EQ(d.family, "SD20");
  EXPECT_TRUE(d.inpaint);
  EXPECT_EQ(d.prediction, Prediction::Eps);
}

TEST(ModelDetection, SdxlLayoutIsRefusedAsSdxl) {
  GenUNetSpec s = tiny_unet(true);
  auto set = unet_set(s, "model.diffusion_model.");
  set = set->with_tensors({{"model.diffusion_model.label_emb.0.0.weight", at::zeros({256, 2816})},
                           {"model.diffusion_model.label_emb.0.2.weight", at::zeros({256, 256})}});
  std::string msg = error_of([&] { detect_model(set, "model.diffusion_model.", "sdxl.safetensors"); });
  EXPECT_TRUE(contains(msg, "is an SDXL checkpoint; SDXL is not supported yet")) << msg;
  EXPECT_TRUE(contains(msg, "sdxl.safetensors")) << msg;
}

TEST(ModelDetection, FluxAndSd3AreRefusedByName) {
  auto flux = WeightSet::from_tensors({{"model.diffusion_model.double_blocks.0.img_attn.qkv.weight", at::zeros({2})},
                                       {"model.diffusion_model.single_blocks.0.linear1.weight", at::zeros({2})}});
  EXPECT_TRUE(contains(error_of([&] { detect_model(flux, "model.diffusion_model.", "f"); }), "Flux"));
  auto sd3 = WeightSet::from_tensors({{"model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight", at::zeros({2})}});
  EXPECT_TRUE(contains(error_of([&] { detect_model(sd3, "model.diffusion_model.", "f"); }), "Stable Diffusion 3"));
}

TEST(ModelDetection, DiffusionModelOnlyFilesLoadWithoutPrefix) {
  TempDir dir;
  fs::path file = dir.path / "unet.safetensors";
  save_safetensors(file, generate_tensors(unet_layout(tiny_unet(false), ""), at::kHalf, 3));
  auto model = load_diffusion_model(file);
  EXPECT_EQ(model->family, "SD15");
  EXPECT_EQ(model->weights.prefix, "");
  // The same file in models/checkpoints is refused: it has no CLIP or VAE.
  std::string msg = error_of([&] { load_checkpoint(file); });
  EXPECT_TRUE(contains(msg, "diffusion model alone")) << msg;
}

// ------------------------------------------------------------------ the generator

struct Generated {
  std::string arch;
  std::string family;
  Prediction prediction;
};

class GeneratedCheckpoint : public ::testing::TestWithParam<Generated> {};

TEST_P(GeneratedCheckpoint, LoadsBackAsItsArchAndPrediction) {
  c10::InferenceMode guard;
  const Generated g = GetParam();
  TempDir dir;
  fs::path file = dir.path / (g.arch + ".safetensors");
  make_checkpoint(g.arch, "tiny", at::kHalf, 7, file);
  auto sf = SafetensorsFile::open(file);
  EXPECT_EQ(sf->metadata().value("comfycpp.arch", ""), g.arch);
  EXPECT_EQ(sf->metadata().value("comfycpp.prediction", ""), g.prediction == Prediction::V ? "v" : "eps");
  auto set = WeightSet::from_file(sf);
  ModelDetection d = detect_model(set, "model.diffusion_model.", file.string());
  EXPECT_EQ(d.family, g.family);
  EXPECT_EQ(d.prediction, g.prediction);
  LoadedCheckpoint ckpt = load_checkpoint(file);
  EXPECT_EQ(ckpt.model->sampling.prediction(), g.prediction);
  EXPECT_TRUE(ckpt.vae);
  EXPECT_TRUE(ckpt.clip);
  // The UNet runs on the generated layout (SD2: linear proj_in/proj_out, 64 channels per head).
  const UNetConfig& c = ckpt.model->unet;
  at::Tensor eps = unet_forward(c, ckpt.model->weights, at::randn({1, 4, 16, 16}), at::full({1}, 500.f),
                                at::randn({1, 77, c.context_dim}));
  EXPECT_EQ(eps.sizes(), (std::vector<int64_t>{1, 4, 16, 16}));
  EXPECT_TRUE(eps.isfinite().all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(Arches, GeneratedCheckpoint,
                         ::testing::Values(Generated{"sd15", "SD15", Prediction::Eps},
                                           Generated{"sd2", "SD20", Prediction::Eps},
                                           Generated{"sd2-v", "SD20", Prediction::V}),
                         [](const auto& info) { return info.param.arch == "sd2-v" ? std::string("sd2v") : info.param.arch; });

TEST(CheckpointGenerator, SameSeedGivesSameBytesAndAnotherSeedDiffers) {
  TempDir dir;
  make_checkpoint("sd15", "tiny", at::kHalf, 11, dir.path / "a.safetensors");
  make_checkpoint("sd15", "tiny", at::kHalf, 11, dir.path / "b.safetensors");
  make_checkpoint("sd15", "tiny", at::kHalf, 12, dir.path / "c.safetensors");
  const std::string a = read_bytes(dir.path / "a.safetensors");
  EXPECT_EQ(a, read_bytes(dir.path / "b.safetensors"));
  EXPECT_NE(a, read_bytes(dir.path / "c.safetensors"));
}

// The generator's SD1.5 key layout is the real one: with the fixture's sizes it produces exactly
// the keys and shapes of tiny_sd15 (made by ComfyUI's own model classes).
TEST(CheckpointGenerator, Sd15LayoutMatchesTheFixtureKeysAndShapes) {
  CheckpointSpec spec = checkpoint_spec("sd15", "tiny");
  spec.unet.model_channels = 32;
  spec.unet.channel_mult = {1, 2, 2};
  spec.unet.num_res_blocks = 1;
  spec.unet.attention = {true, true, false};
  // The fixture's output blocks 0-3 have a transformer and 4-5 none (ComfyUI's list [0,0,1,1,1,1]).
  spec.unet.output_attention = {true, true, true, true, false, false};
  spec.unet.context_dim = 128;
  spec.vae.ch = 32;
  spec.vae.ch_mult = {1, 2, 2, 2};
  spec.vae.num_res_blocks = 1;
  spec.clip.hidden = 128;
  spec.clip.layers = 2;
  spec.clip.mlp = 512;
  std::map<std::string, std::vector<int64_t>> ours, theirs;
  for (const GenTensor& t : checkpoint_layout(spec)) ours[t.name] = t.shape;
  auto sf = SafetensorsFile::open(kTiny);
  for (const std::string& k : sf->keys()) theirs[k] = sf->info(k).shape;
  EXPECT_EQ(ours.size(), theirs.size());
  for (const auto& [k, shape] : theirs) {
    auto it = ours.find(k);
    if (it == ours.end()) {
      ADD_FAILURE() << "missing " << k;
      continue;
    }
    EXPECT_EQ(it->second, shape) << k;
  }
  for (const auto& [k, shape] : ours) EXPECT_TRUE(theirs.count(k)) << "extra " << k;
}

}  // namespace
}  // namespace comfy
