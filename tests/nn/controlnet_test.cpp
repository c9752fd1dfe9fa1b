// ControlNets and T2I adapters against the real ComfyUI: the cases of tests/fixtures/controlnet/
// (recorded by tools/oracle/record_controlnet.py: tiny_sd15 with the tiny ControlNet of
// make_tiny_controlnet.py, KSampler, SaveLatent) run through our engine and their final latents are
// compared; the T2I adapter's features are compared with T2IAdapter.get_control's
// (record_t2i_adapter.py). Bad files: an SDXL-type ControlNet on the SD1 model, a truncated file,
// a checkpoint that is not a control model.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "graph/executor.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "graph/validation.h"
#include "io/image.h"
#include "models/controlnet_model.h"
#include "models/folder_paths.h"
#include "nodes/all.h"
#include "support/model_engine.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = COMFY_TEST_DATA;
const fs::path kCn = kFixtures / "controlnet";

json load_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

// The fixture checkpoints, and the ControlNets and hint pictures of tests/fixtures/controlnet.
struct Engine : ModelEngine {
  Engine() {
    folders.add_model_folder_path("controlnet", kCn / "models", true);
    folders.set_input_directory(kCn / "input");
  }
  ExecutionResult run(const json& prompt) { return execute(prompt, json{{"client_id", "cn"}}); }
  at::Tensor latent(const ExecutionResult& r, const std::string& node) const {
    return read_safetensors_f32(saved(r.outputs.at(node)["latents"].at(0)).string()).at("latent_tensor");
  }
};

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Each recorded case: our final latent within atol of ComfyUI's; and the ControlNet matters (the
// same workflow with every strength at 0, which the apply nodes treat as "no ControlNet", is far off).
// `control_net_name`, when given, replaces the file of the ControlNetLoader (node 10), for a file
// that must behave exactly as the recorded one.
void expect_case(const std::string& name, const std::string& control_net_name = "") {
  c10::InferenceMode guard;
  json prompt = load_json(kCn / (name + ".json"));
  if (!control_net_name.empty()) prompt["10"]["inputs"]["control_net_name"] = control_net_name;
  at::Tensor ref = read_safetensors_f32((kCn / (name + ".latent")).string()).at("latent_tensor");
  Engine engine;
  ExecutionResult r = engine.run(prompt);
  ASSERT_TRUE(r.success) << r.error.dump();
  at::Tensor ours = engine.latent(r, "30");
  ASSERT_EQ(ours.sizes(), ref.sizes());
  const double atol = 2e-3, diff = max_abs(ours, ref);
  std::cout << "  " << name << ": max |diff| " << diff << " (atol " << atol << ")\n";
  EXPECT_LE(diff, atol);

  json off = prompt;
  for (auto& [id, n] : off.items())
    if (n["inputs"].contains("strength")) n["inputs"]["strength"] = 0.0;
  Engine engine2;
  ExecutionResult r2 = engine2.run(off);
  ASSERT_TRUE(r2.success) << r2.error.dump();
  const double without = max_abs(engine2.latent(r2, "30"), ref);
  std::cout << "  " << name << " without ControlNet: max |diff| " << without << "\n";
  EXPECT_GT(without, 20 * atol);
}

TEST(ControlNet, ApplyAdvancedMatchesComfyUI) { expect_case("cn_advanced"); }
TEST(ControlNet, ChainAndPercentRangeMatchComfyUI) { expect_case("cn_chain_range"); }
TEST(ControlNet, ApplyOldReachesTheUncondAsInComfyUI) { expect_case("cn_apply_uncond"); }
TEST(ControlNet, DiffControlNetLoaderMatchesComfyUI) { expect_case("cn_diff"); }
// The same ControlNet in the diffusers layout (make_tiny_controlnet.py renamed it with ComfyUI's
// unet_to_diffusers) gives the recorded result of the ldm file.
TEST(ControlNet, DiffusersLayoutLoadsAsTheLdmOne) {
  {
    c10::InferenceMode guard;
    auto ldm = load_controlnet(kCn / "models" / "tiny_controlnet.safetensors");
    auto dif = load_controlnet(kCn / "models" / "tiny_controlnet_diffusers.safetensors");
    EXPECT_EQ(dif->weights.prefix, "");
    EXPECT_EQ(dif->controlnet.unet.to_json(), ldm->controlnet.unet.to_json());
    const auto keys = ldm->weights.keys();
    EXPECT_EQ(dif->weights.keys(), keys);
    for (const std::string& k : keys)
      if (dif->weights.has(k)) EXPECT_TRUE(at::equal(dif->weights.set->raw(k), ldm->weights.set->raw("control_model." + k))) << k;
  }
  expect_case("cn_advanced", "tiny_controlnet_diffusers.safetensors");
}

TEST(ControlNet, DetectsTheTinyControlNet) {
  auto net = load_controlnet(kCn / "models" / "tiny_controlnet.safetensors");
  ASSERT_EQ(net->kind, ControlNetwork::Kind::ControlNet);
  EXPECT_EQ(net->weights.prefix, "control_model.");
  EXPECT_EQ(net->controlnet.hint_channels, 3);
  EXPECT_EQ(net->controlnet.unet.model_channels, 32);
  EXPECT_EQ(net->controlnet.unet.context_dim, 128);
  EXPECT_EQ(net->controlnet.unet.channel_mult, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(net->controlnet.unet.adm_in_channels, 0);
  EXPECT_FALSE(net->global_average_pooling);
}

TEST(ControlNet, SdxlControlNetOnSd1ModelIsAClearError) {
  c10::InferenceMode guard;
  json prompt = load_json(kCn / "cn_advanced.json");
  prompt["10"]["inputs"]["control_net_name"] = "tiny_controlnet_sdxl.safetensors";
  Engine engine;
  ExecutionResult r = engine.run(prompt);
  ASSERT_FALSE(r.success);
  const std::string msg = r.error.dump();
  EXPECT_NE(msg.find("tiny_controlnet_sdxl.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SDXL"), std::string::npos) << msg;
}

TEST(ControlNet, TruncatedFileIsAClearError) {
  fs::path dir = Engine::make_base();
  fs::path bad = dir / "truncated_controlnet.safetensors";
  {
    std::ifstream in(kCn / "models" / "tiny_controlnet.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(bad, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  try {
    load_controlnet(bad);
    ADD_FAILURE() << "a truncated file loaded";
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("truncated_controlnet.safetensors"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(ControlNet, CheckpointIsNotAControlNet) {
  try {
    load_controlnet(kFixtures / "models" / "checkpoints" / "tiny_sd15.safetensors");
    ADD_FAILURE() << "a checkpoint loaded as a ControlNet";
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny_sd15.safetensors"), std::string::npos) << e.what();
  }
}

// T2IAdapter.get_control for a 16x16 latent: the hint (64x64 image) upscaled to 128x128 with
// nearest-exact, averaged to one channel, through the full adapter, times strength 0.7.
TEST(T2IAdapter, FullAdapterFeaturesMatchComfyUI) {
  c10::InferenceMode guard;
  auto net = load_controlnet(kCn / "models" / "tiny_t2i_full.safetensors");
  ASSERT_EQ(net->kind, ControlNetwork::Kind::T2IAdapter);
  EXPECT_FALSE(net->adapter.light);
  EXPECT_EQ(net->adapter.input_channels(), 1);
  EXPECT_EQ(net->adapter.channels, (std::vector<int64_t>{16, 32, 64, 64}));
  io::DecodedImage d = io::read_image(kCn / "input" / "scene_64x64.png");
  const io::Frame& f = d.frames.at(0);
  at::Tensor px = at::tensor(std::vector<int64_t>(f.pixels.begin(), f.pixels.end()), at::kLong)
                      .reshape({1, f.height, f.width, d.channels})
                      .narrow(3, 0, 3)
                      .to(at::kFloat) / 255.0;
  ControlNet loaded(net);
  auto cn = loaded.with_hint(px.movedim(-1, 1), 0.7, 0.0, 1.0, nullptr);
  ModelConds conds;
  auto out = cn->get_control(at::zeros({1, 4, 16, 16}), at::ones({1}), conds, 1,
                             ModelSampling::discrete(Prediction::Eps));
  ASSERT_TRUE(out);
  auto ref = read_safetensors_f32((kCn / "t2i_full_features.safetensors").string());
  ASSERT_EQ(out->input.size(), 12u);
  EXPECT_TRUE(out->middle.empty());
  for (size_t i = 0; i < out->input.size(); ++i) {
    auto it = ref.find("input." + std::to_string(i));
    if (it == ref.end()) {
      EXPECT_FALSE(out->input[i].defined()) << i;
      continue;
    }
    ASSERT_TRUE(out->input[i].defined()) << i;
    ASSERT_EQ(out->input[i].sizes(), it->second.sizes()) << i;
    double diff = max_abs(out->input[i], it->second);
    EXPECT_LE(diff, 1e-4) << "input." << i;
  }
}

}  // namespace
}  // namespace comfy::testing

namespace comfy::testing {
namespace {

// Adapter_light and the SDXL Adapter run directly by ComfyUI (record_t2i_networks.py: sizes a
// loadable file cannot have, random weights): our network on the same weights and hint.
void expect_t2i_network(const std::string& file, bool light, bool xl) {
  c10::InferenceMode guard;
  auto t = read_safetensors_f32((kCn / file).string());
  std::unordered_map<std::string, at::Tensor> w;
  for (auto& [k, v] : t)
    if (k.rfind("w.", 0) == 0) w[k] = v;
  Weights weights(WeightSet::from_tensors(std::move(w)), "w.");
  T2IAdapterConfig cfg = detect_t2i_adapter_config(weights);
  EXPECT_EQ(cfg.light, light);
  EXPECT_EQ(cfg.xl, xl);
  UNetControl out = t2i_adapter_forward(cfg, weights, t.at("hint"));
  EXPECT_EQ(out.input.size(), xl ? 10u : 12u);
  EXPECT_EQ(out.middle.size(), xl ? 1u : 0u);
  int compared = 0;
  auto check = [&](const std::vector<at::Tensor>& list, const std::string& key) {
    for (size_t i = 0; i < list.size(); ++i) {
      auto it = t.find(key + "." + std::to_string(i));
      if (it == t.end()) {
        EXPECT_FALSE(list[i].defined()) << key << i;
        continue;
      }
      ASSERT_TRUE(list[i].defined()) << key << i;
      ASSERT_EQ(list[i].sizes(), it->second.sizes()) << key << i;
      EXPECT_LE(max_abs(list[i], it->second), 1e-4) << key << "." << i;
      ++compared;
    }
  };
  check(out.input, "input");
  check(out.middle, "middle");
  EXPECT_EQ(compared, 4);  // one feature per level (the SDXL adapter's deepest goes to the middle block)
}

TEST(T2IAdapter, LightAdapterMatchesComfyUI) { expect_t2i_network("t2i_light.safetensors", true, false); }
TEST(T2IAdapter, XlAdapterMatchesComfyUI) { expect_t2i_network("t2i_xl.safetensors", false, true); }

}  // namespace
}  // namespace comfy::testing
