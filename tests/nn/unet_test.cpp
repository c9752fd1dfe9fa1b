// The SD1 UNet against ComfyUI's own outputs: stages/unet_*.safetensors hold the inputs (x_in,
// timestep, context) and ComfyUI's diffusion_model output (eps) for tiny_sd15.
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "core/json.h"
#include "models/checkpoint.h"
#include "models/model_detection.h"
#include "nn/unet.h"
#include "support/safetensors_read.h"

namespace comfy {
namespace {

const std::string kData = COMFY_TEST_DATA;

json manifest_case(const std::string& id) {
  std::ifstream in(kData + "/reference/manifest.json");
  json m = json::parse(in);
  for (const json& c : m["cases"])
    if (c["id"] == id) return c;
  ADD_FAILURE() << "no manifest case " << id;
  return json();
}

double tolerance(const json& c, const std::string& tensor) {
  for (const json& cmp : c["compare"])
    if (cmp["tensor"] == tensor) return cmp["atol"].get<double>();
  ADD_FAILURE() << "no tolerance for " << tensor;
  return 0;
}

struct TinyUNet {
  std::shared_ptr<const WeightSet> set;
  ModelDetection detected;
  Weights w;
  TinyUNet() {
    set = load_weight_file(kData + "/models/checkpoints/tiny_sd15.safetensors");
    detected = detect_model(set, "model.diffusion_model.", "tiny_sd15.safetensors");
    w = Weights(set, "model.diffusion_model.");
  }
};

class UNetParity : public ::testing::TestWithParam<std::string> {};

TEST_P(UNetParity, EpsMatchesComfyUIWithinManifestTolerance) {
  c10::InferenceMode guard;
  const std::string id = GetParam();
  const json c = manifest_case(id);
  auto ref = testing::read_safetensors_f32(kData + "/reference/" + c["files"]["tensors"].get<std::string>());
  TinyUNet unet;
  at::Tensor eps = unet_forward(unet.detected.unet, unet.w, ref.at("x_in"), ref.at("timestep"), ref.at("context"));
  ASSERT_EQ(eps.sizes(), ref.at("eps").sizes());
  const double diff = (eps - ref.at("eps")).abs().max().item<double>();
  EXPECT_LE(diff, tolerance(c, "eps")) << id;
}

INSTANTIATE_TEST_SUITE_P(Stages, UNetParity, ::testing::Values("unet_eps_sigma_max", "unet_eps_sigma_1_batch2"));

TEST(UNetConfig, TinySd15ConfigComesFromShapesAsTheFixtureReadmeLists) {
  TinyUNet unet;
  const UNetConfig& c = unet.detected.unet;
  EXPECT_EQ(c.in_channels, 4);
  EXPECT_EQ(c.out_channels, 4);
  EXPECT_EQ(c.model_channels, 32);
  EXPECT_EQ(c.channel_mult, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(c.num_res_blocks, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_EQ(c.transformer_depth, (std::vector<int64_t>{1, 1, 0}));
  // ComfyUI's list runs from the last output block to the first (the UNet pops it from the back):
  // the fixture's output blocks 0-3 have a transformer, blocks 4-5 none.
  EXPECT_EQ(c.transformer_depth_output, (std::vector<int64_t>{0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(c.transformer_depth_middle, 1);
  EXPECT_EQ(c.context_dim, 128);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_head_channels, -1);
  EXPECT_FALSE(c.use_linear_in_transformer);
  EXPECT_EQ(c.adm_in_channels, 0);
}

TEST(UNetConfig, DetectionRefusesWeightsWithoutAUNet) {
  auto set = WeightSet::from_tensors({{"foo.weight", at::zeros({2})}});
  EXPECT_THROW(detect_unet_config(Weights(set)), ComfyError);
}

TEST(UNetControl, ZeroResidualsLeaveTheOutputUnchangedAndAMiddleResidualChangesIt) {
  c10::InferenceMode guard;
  auto ref = testing::read_safetensors_f32(kData + "/reference/stages/unet_eps_sigma_max.safetensors");
  TinyUNet unet;
  const at::Tensor& x = ref.at("x_in");
  at::Tensor plain = unet_forward(unet.detected.unet, unet.w, x, ref.at("timestep"), ref.at("context"));

  // The residual shapes of the tiny UNet: middle at the deepest width (64) and 2x2 for 8x8 input.
  UNetControl zero;
  zero.middle.push_back(at::zeros({1, 64, 2, 2}));
  zero.output.push_back(at::Tensor());  // None: nothing to add
  at::Tensor same = unet_forward(unet.detected.unet, unet.w, x, ref.at("timestep"), ref.at("context"), std::nullopt, &zero);
  EXPECT_TRUE(at::equal(plain, same));

  UNetControl bump;
  bump.middle.push_back(at::full({1, 64, 2, 2}, 0.5));
  at::Tensor changed = unet_forward(unet.detected.unet, unet.w, x, ref.at("timestep"), ref.at("context"), std::nullopt, &bump);
  EXPECT_GT((changed - plain).abs().max().item<double>(), 1e-4);

  UNetControl wrong;  // a residual of the wrong shape is skipped, as ComfyUI's apply_control does
  wrong.middle.push_back(at::ones({1, 3, 5, 5}));
  at::Tensor skipped = unet_forward(unet.detected.unet, unet.w, x, ref.at("timestep"), ref.at("context"), std::nullopt, &wrong);
  EXPECT_TRUE(at::equal(plain, skipped));
}

// Odd latent sizes: each Upsample targets the size of the skip it meets (ComfyUI's output_shape),
// so a 9x9 latent (5x5, 3x3 inside) comes back 9x9.
TEST(UNetForward, OddLatentSizesComeBackAtTheirSize) {
  c10::InferenceMode guard;
  TinyUNet unet;
  at::Tensor eps = unet_forward(unet.detected.unet, unet.w, at::randn({1, 4, 9, 9}), at::full({1}, 500.f),
                                at::randn({1, 77, 128}));
  EXPECT_EQ(eps.sizes(), (std::vector<int64_t>{1, 4, 9, 9}));
}

TEST(UNetForward, WrongChannelCountIsAClearError) {
  c10::InferenceMode guard;
  TinyUNet unet;
  EXPECT_THROW(unet_forward(unet.detected.unet, unet.w, at::zeros({1, 3, 8, 8}), at::zeros({1}), at::zeros({1, 77, 128})),
               ComfyError);
}

}  // namespace
}  // namespace comfy
