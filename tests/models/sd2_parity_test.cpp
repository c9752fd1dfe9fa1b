// SD2.x parity with the real ComfyUI: tiny SD2 (eps) and SD2-v checkpoints made by our generator
// (deterministic; their sha256 was recorded with the references) run the recorded text-to-image
// workflows, and the sampled latent and the decoded IMAGE must match what ComfyUI 0.8.0 produced
// for the same files (tools/oracle/record_sd2.py; tests/fixtures/sd2/). This covers OpenCLIP-H
// conversion, the penultimate layer and CLIPSetLastLayer, linear proj_in, 64-channel heads,
// v-prediction detection from output_blocks.11 and the v-prediction denoiser.
#include <gtest/gtest.h>

#include <fstream>

#include "core/tensor.h"
#include "io/sha256.h"
#include "models/checkpoint_generator.h"
#include "models/latent.h"
#include "support/model_engine.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

const fs::path kSd2 = fs::path(COMFY_TEST_DATA) / "sd2";

json load(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

// Keeps what reaches it, by node id: the sampled LATENT and the decoded IMAGE.
struct Captured {
  std::map<std::string, at::Tensor> tensors;
};

NodeDef capture_node(const std::string& name, const std::string& type, std::shared_ptr<Captured> into) {
  return NodeDef(name)
      .input("value", type)
      .output_node()
      .run([into, type](ExecutionContext& ctx, const NodeInputs& in) {
        into->tensors[ctx.node_id()] =
            type == "LATENT" ? latent_of(in["value"]).samples.clone() : tensor_of(in["value"], "IMAGE").clone();
        return NodeOutput();
      });
}

class Sd2Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Sd2Parity, MatchesComfyUI) {
  const json cases = load(kSd2 / "cases.json");
  json c;
  for (auto& e : cases["cases"])
    if (e["id"] == GetParam()) c = e;
  ASSERT_TRUE(c.is_object());

  ModelEngine engine;
  auto captured = std::make_shared<Captured>();
  engine.registry.add(capture_node("TestCaptureLatent", "LATENT", captured));
  engine.registry.add(capture_node("TestCaptureImage", "IMAGE", captured));
  // The generated checkpoints, in a checkpoints folder of this engine's own.
  const fs::path ckpts = engine.base / "sd2_checkpoints";
  fs::create_directories(ckpts);
  const std::string ckpt = c["ckpt"];
  const fs::path file = ckpts / ckpt;
  make_checkpoint(ckpt == "tiny_sd2.safetensors" ? "sd2" : "sd2-v", "tiny", at::kHalf, 2024, file);
  ASSERT_EQ(io::sha256_file_hex(file), c["ckpt_sha256"].get<std::string>())
      << "the generator no longer makes the file the references were recorded with";
  engine.folders.add_model_folder_path("checkpoints", ckpts, true);

  json prompt = load(kSd2 / GetParam() / "workflow_api.json");
  prompt["90"] = {{"class_type", "TestCaptureLatent"}, {"inputs", {{"value", {"3", 0}}}}};
  prompt["91"] = {{"class_type", "TestCaptureImage"}, {"inputs", {{"value", {"8", 0}}}}};
  engine.run(prompt);
  ASSERT_TRUE(captured->tensors.count("90") && captured->tensors.count("91"));

  at::Tensor ref_latent = read_safetensors_f32((kSd2 / GetParam() / "final.latent.safetensors").string()).at("latent_tensor");
  at::Tensor ref_image = read_safetensors_f32((kSd2 / GetParam() / "final_image.safetensors").string()).at("image");
  at::Tensor latent = captured->tensors["90"].to(at::kFloat);
  at::Tensor image = captured->tensors["91"].to(at::kFloat);
  ASSERT_EQ(latent.sizes(), ref_latent.sizes());
  ASSERT_EQ(image.sizes(), ref_image.sizes());
  // The manifest's e2e rule: 1e-3 absolute, scaled with the size of the latents (these random
  // models reach a few hundred), since float32 summation order differs between the two engines.
  const double latent_atol = std::max(1e-3, 1e-5 * ref_latent.abs().max().item<double>());
  EXPECT_LE((latent - ref_latent).abs().max().item<double>(), latent_atol);
  EXPECT_LE((image - ref_image).abs().max().item<double>(), 2.0 / 255.0);
}

INSTANTIATE_TEST_SUITE_P(Recorded, Sd2Parity,
                         ::testing::Values("sd2_t2i_euler_normal", "sd2v_t2i_dpmpp_2m_karras",
                                           "sd2v_t2i_euler_ancestral_clipskip"));

}  // namespace
}  // namespace comfy::testing
