// LoRA: patched weights against the real ComfyUI 0.8.0 (tests/fixtures/loras, recorded by
// tools/oracle/record_loras.py on the tiny files of tools/oracle/make_tiny_loras.py), the base
// weights left untouched, and the LoraLoader / LoraLoaderModelOnly nodes.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "io/safetensors.h"
#include "models/checkpoint.h"
#include "models/folder_paths.h"
#include "models/lora.h"
#include "nodes/all.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;
const std::string kData = COMFY_TEST_DATA;

LoadedCheckpoint tiny_checkpoint() {
  CheckpointOptions options;
  options.output_vae = false;
  return load_checkpoint(kData + "/models/checkpoints/tiny_sd15.safetensors", options);
}

fs::path lora_path(const std::string& name) {
  if (name == "tiny_lora.safetensors") return kData + "/models/loras/" + name;
  return kData + "/loras/" + name;
}

const json& recorded_cases() {
  static const json cases = [] {
    std::ifstream f(kData + "/loras/recorded/cases.json");
    return json::parse(f);
  }();
  return cases;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (auto& [name, _] : recorded_cases().items()) names.push_back(name);
  return names;
}

bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }

// ---------------------------------------------------------------- against ComfyUI

class LoraRecorded : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraRecorded, PatchedWeightsMatchComfyUI) {
  c10::InferenceMode guard;
  const json& c = recorded_cases().at(GetParam());
  LoadedCheckpoint ckpt = tiny_checkpoint();
  std::shared_ptr<const DiffusionModel> model = ckpt.model;
  std::shared_ptr<const ClipModel> clip = ckpt.clip;
  std::vector<std::string> not_loaded;
  size_t model_patched = 0, clip_patched = 0;
  for (const json& step : c.at("loras")) {
    const bool with_clip = step.at("node") == "LoraLoader";
    const double sm = step.at("strength_model").get<double>(), sc = step.at("strength_clip").get<double>();
    const std::string name = step.at("lora_name").get<std::string>();
    LoraResult r = load_lora_for_models(model, with_clip ? clip : nullptr, load_lora_file(lora_path(name)), sm,
                                        with_clip ? sc : 0.0, name);
    model = r.model;
    if (with_clip) clip = r.clip;
    not_loaded.insert(not_loaded.end(), r.not_loaded.begin(), r.not_loaded.end());
    model_patched = r.model_patched, clip_patched = r.clip_patched;
  }

  // ComfyUI's "lora key not loaded" warnings name the same keys.
  std::vector<std::string> expected_not_loaded;
  const std::string prefix = "lora key not loaded: ";
  for (const json& w : c.at("warnings"))
    if (starts_with(w.get<std::string>(), prefix)) expected_not_loaded.push_back(w.get<std::string>().substr(prefix.size()));
  std::sort(not_loaded.begin(), not_loaded.end());
  std::sort(expected_not_loaded.begin(), expected_not_loaded.end());
  EXPECT_EQ(not_loaded, expected_not_loaded);
  if (c.at("loras").size() == 1) {
    EXPECT_EQ(model_patched, c.at("model_patched").get<size_t>());
    if (c.at("loras")[0].at("node") == "LoraLoader") {
      EXPECT_EQ(clip_patched, c.at("clip_patched").get<size_t>());
    }
  }

  auto ref = SafetensorsFile::open(kData + "/loras/recorded/" + GetParam() + ".safetensors");
  ASSERT_EQ(ref->keys().size(), c.at("keys").size());
  for (const std::string& key : ref->keys()) {
    const at::Tensor expected = ref->tensor(key).to(at::kFloat);
    const bool is_model = starts_with(key, "model.");
    const at::Tensor ours = is_model ? model->weights.set->get(key) : clip->weights()->get(key);
    ASSERT_EQ(ours.sizes(), expected.sizes()) << key;
    const at::Tensor diff = (ours - expected).abs();
    if (ref->info(key).dtype == "F16") {
      // Both round an f32 result to fp16: allow one fp16 step where the f32 sums differ in the last bits.
      const at::Tensor tol = at::clamp_min(expected.abs() * (1.0 / 1024), 1e-4);
      EXPECT_TRUE((diff <= tol).all().item<bool>()) << key << " max_abs " << diff.max().item<double>();
      // and most elements are the same fp16 value
      EXPECT_LE((diff > 0).sum().item<int64_t>(), expected.numel() / 50 + 1) << key;
    } else {
      EXPECT_LE(diff.max().item<double>(), 1e-4) << key;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Lora, LoraRecorded, ::testing::ValuesIn(case_names()), [](const auto& info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '.', '_');
  return n;
});

// ---------------------------------------------------------------- the base never changes

TEST(Lora, ApplyingNeverChangesTheBaseWeights) {
  c10::InferenceMode guard;
  LoadedCheckpoint ckpt = tiny_checkpoint();
  const std::string unet_key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";
  const std::string clip_key = "clip_l.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight";
  const at::Tensor unet_before = ckpt.model->weights.set->get(unet_key).clone();
  const at::Tensor clip_before = ckpt.clip->weights()->get(clip_key).clone();
  const at::Tensor raw_before = ckpt.model->weights.set->raw(unet_key).clone();

  LoraResult r = load_lora_for_models(ckpt.model, ckpt.clip, load_lora_file(lora_path("tiny_lora.safetensors")), 1.0,
                                      1.0, "tiny_lora");
  // the patched weights differ (so this test can fail) ...
  EXPECT_GT((r.model->weights.set->get(unet_key) - unet_before).abs().max().item<double>(), 1e-3);
  EXPECT_GT((r.clip->weights()->get(clip_key) - clip_before).abs().max().item<double>(), 1e-3);
  // ... and the inputs are as they were.
  EXPECT_TRUE(at::equal(ckpt.model->weights.set->get(unet_key), unet_before));
  EXPECT_TRUE(at::equal(ckpt.clip->weights()->get(clip_key), clip_before));
  EXPECT_TRUE(at::equal(ckpt.model->weights.set->raw(unet_key), raw_before));
  EXPECT_NE(r.model.get(), ckpt.model.get());
  EXPECT_NE(r.clip.get(), ckpt.clip.get());
}

TEST(Lora, TwoStrengthsOfOneFileShareItsTensors) {
  c10::InferenceMode guard;
  LoadedCheckpoint ckpt = tiny_checkpoint();
  auto file = load_lora_file(lora_path("tiny_lora.safetensors"));
  const std::string key = "model.diffusion_model.middle_block.0.in_layers.2.weight";
  LoraResult a = load_lora_for_models(ckpt.model, nullptr, file, 0.5, 0.0, "tiny_lora");
  LoraResult b = load_lora_for_models(ckpt.model, nullptr, file, 1.0, 0.0, "tiny_lora");
  const at::Tensor base = ckpt.model->weights.set->get(key);
  const at::Tensor da = a.model->weights.set->get(key) - base, db = b.model->weights.set->get(key) - base;
  EXPECT_TRUE(at::allclose(db, da * 2, 1e-5, 1e-6));
}

TEST(Lora, AnotherFamilysLoraPatchesNothingAndListsEveryKey) {
  c10::InferenceMode guard;
  LoadedCheckpoint ckpt = tiny_checkpoint();
  auto file = load_lora_file(lora_path("lora_sdxl_keys.safetensors"));
  LoraResult r = load_lora_for_models(ckpt.model, ckpt.clip, file, 1.0, 1.0, "lora_sdxl_keys.safetensors");
  EXPECT_EQ(r.model_patched, 0u);
  EXPECT_EQ(r.clip_patched, 0u);
  EXPECT_EQ(r.not_loaded.size(), file->keys().size());
}

TEST(Lora, CorruptFileIsAnErrorNamingIt) {
  const fs::path dir = fs::temp_directory_path() / "comfy_lora_test_corrupt";
  fs::create_directories(dir);
  const fs::path bad = dir / "broken_lora.safetensors";
  std::ofstream(bad, std::ios::binary) << "this is not a safetensors file at all";
  try {
    load_lora_file(bad);
    FAIL() << "no error";
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("broken_lora.safetensors"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------- the nodes

struct NodeHarness {
  Registry registry;
  FolderPaths folders;
  Services services;
  std::shared_ptr<void> state;  // the node's state across calls (the executor's objects cache)
  explicit NodeHarness(const fs::path& base) : folders(base) {
    register_lora(registry);
    services.folders = &folders;
  }
  NodeOutput run(const std::string& class_type, const std::map<std::string, Value>& inputs) {
    std::atomic<bool> interrupt{false};
    ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {}, &state);
    NodeInputs in;
    for (auto& [name, value] : inputs) in.values[name] = {value};
    return registry.find(class_type)->function(ctx, in);
  }
};

Value obj(std::shared_ptr<const Object> o) { return Value(std::move(o)); }

TEST(LoraLoader, StrengthZeroReturnsTheInputsThemselves) {
  LoadedCheckpoint ckpt = tiny_checkpoint();
  NodeHarness h(kData);
  NodeOutput out = h.run("LoraLoader", {{"model", obj(ckpt.model)},
                                        {"clip", obj(ckpt.clip)},
                                        {"lora_name", Value(json("tiny_lora.safetensors"))},
                                        {"strength_model", Value(json(0.0))},
                                        {"strength_clip", Value(json(0.0))}});
  EXPECT_EQ(out.result.at(0).object().get(), ckpt.model.get());
  EXPECT_EQ(out.result.at(1).object().get(), ckpt.clip.get());
  EXPECT_EQ(h.state, nullptr);  // nothing was read
}

TEST(LoraLoader, PatchesModelAndClipWithTheirStrengths) {
  LoadedCheckpoint ckpt = tiny_checkpoint();
  NodeHarness h(kData);
  NodeOutput out = h.run("LoraLoader", {{"model", obj(ckpt.model)},
                                        {"clip", obj(ckpt.clip)},
                                        {"lora_name", Value(json("tiny_lora.safetensors"))},
                                        {"strength_model", Value(json(0.0))},
                                        {"strength_clip", Value(json(1.0))}});
  c10::InferenceMode guard;
  const auto& model = out.result.at(0).as<DiffusionModel>("MODEL");
  const auto& clip = out.result.at(1).as<ClipModel>("CLIP");
  const std::string unet_key = "model.diffusion_model.middle_block.0.in_layers.2.weight";
  const std::string clip_key = "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight";
  EXPECT_TRUE(at::equal(model.weights.set->get(unet_key), ckpt.model->weights.set->get(unet_key)));  // strength 0
  EXPECT_FALSE(at::equal(clip.weights()->get(clip_key), ckpt.clip->weights()->get(clip_key)));
}

TEST(LoraLoader, KeepsTheLastFileByPath) {
  const fs::path base = fs::temp_directory_path() / "comfy_lora_test_cache";
  fs::remove_all(base);
  fs::create_directories(base / "models" / "loras");
  const fs::path file = base / "models" / "loras" / "l.safetensors";
  fs::copy_file(lora_path("tiny_lora.safetensors"), file);
  LoadedCheckpoint ckpt = tiny_checkpoint();
  NodeHarness h(base);
  auto run = [&](double strength) {
    return h.run("LoraLoaderModelOnly", {{"model", obj(ckpt.model)},
                                         {"lora_name", Value(json("l.safetensors"))},
                                         {"strength_model", Value(json(strength))}});
  };
  run(1.0);
  // The file is replaced by garbage: the node does not read it again for the same path.
  const fs::path tmp = base / "garbage";
  std::ofstream(tmp, std::ios::binary) << "garbage";
  fs::rename(tmp, file);
  NodeOutput out = run(0.5);
  EXPECT_NE(out.result.at(0).object().get(), ckpt.model.get());
  // A fresh node reads the file and fails, naming it.
  NodeHarness fresh(base);
  try {
    fresh.run("LoraLoaderModelOnly", {{"model", obj(ckpt.model)},
                                      {"lora_name", Value(json("l.safetensors"))},
                                      {"strength_model", Value(json(0.5))}});
    FAIL() << "no error";
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("l.safetensors"), std::string::npos) << e.what();
  }
  fs::remove_all(base);
}

}  // namespace
}  // namespace comfy
