// The KL autoencoder (nn/vae) and ComfyUI's VAE object (models/vae_model) against the recorded
// ComfyUI stages (tests/fixtures/reference/stages/vae_*.safetensors) on the tiny SD1.5 models.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"
#include "nodes/latent_runner.h"

namespace comfy::testing {
namespace {

const std::map<std::string, at::Tensor>& decode_stage() {
  static auto t = read_safetensors_f32((kReference / "stages/vae_decode_8x8.safetensors").string());
  return t;
}
const std::map<std::string, at::Tensor>& encode_stage() {
  static auto t = read_safetensors_f32((kReference / "stages/vae_encode_scene_64x64.safetensors").string());
  return t;
}

TEST(VaeConfig, SizesComeFromTheShapes) {
  // The fixture README: ch 32, ch_mult [1,2,2,2], 1 res block per level, z 4, embed 4.
  for (auto vae : {checkpoint_vae(), standalone_vae()}) {
    const nn::VaeConfig& c = vae->config();
    EXPECT_EQ(c.ch, 32);
    EXPECT_EQ(c.ch_mult, (std::vector<int64_t>{1, 2, 2, 2}));
    EXPECT_EQ(c.num_res_blocks, 1);
    EXPECT_EQ(c.z_channels, 4);
    EXPECT_EQ(c.embed_dim, 4);
    EXPECT_EQ(c.quant_conv, "quant_conv.");
    EXPECT_EQ(c.post_quant_conv, "post_quant_conv.");
    EXPECT_EQ(vae->downscale_ratio(), 8);
    EXPECT_EQ(vae->latent_channels(), 4);
  }
}

TEST(VaeDecode, MatchesComfyUIStage) {
  const auto& s = decode_stage();
  at::Tensor image = checkpoint_vae()->decode(s.at("latent"));
  ASSERT_EQ(image.sizes(), s.at("image").sizes());
  EXPECT_LE(max_diff(image, s.at("image")), 1e-4);  // manifest vae_decode_8x8 atol
}

TEST(VaeEncode, MatchesComfyUIStage) {
  const auto& s = encode_stage();
  at::Tensor latent = checkpoint_vae()->encode(s.at("image"));
  ASSERT_EQ(latent.sizes(), s.at("latent").sizes());
  EXPECT_LE(max_diff(latent, s.at("latent")), 3e-4);  // manifest vae_encode_scene_64x64 atol
}

TEST(VaeDecode, BatchItemsAreIndependent) {
  at::Tensor z = decode_stage().at("latent");
  at::Tensor batch = at::cat({z, z * 0.5, -z}, 0);
  at::Tensor out = checkpoint_vae()->decode(batch);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 64, 64, 3}));
  // Equal up to float rounding (the convolution kernels block batches differently).
  EXPECT_LE(max_diff(out.narrow(0, 1, 1), checkpoint_vae()->decode(z * 0.5)), 1e-5);
  EXPECT_LE(max_diff(out.narrow(0, 0, 1), decode_stage().at("image")), 1e-4);
}

TEST(VaeDecode, OutputIsClampedToUnitRange) {
  at::Tensor out = checkpoint_vae()->decode(decode_stage().at("latent") * 20);
  EXPECT_GE(out.min().item<float>(), 0.0f);
  EXPECT_LE(out.max().item<float>(), 1.0f);
}

TEST(VaeEncode, CropsToMultiplesOfEightAroundTheCentre) {
  // vae_encode_crop_pixels: H 67 -> 64 from offset (67 % 8) / 2 = 1; W 70 -> 64 from offset 3.
  at::Tensor image = encode_stage().at("image");
  at::Tensor big = at::rand({1, 67, 70, 4});
  big.narrow(1, 1, 64).narrow(2, 3, 64).narrow(3, 0, 3).copy_(image);
  at::Tensor latent = checkpoint_vae()->encode(big);
  ASSERT_EQ(latent.sizes(), (std::vector<int64_t>{1, 4, 8, 8}));
  EXPECT_LE(max_diff(latent, encode_stage().at("latent")), 3e-4);
}

TEST(VaeModel, StandaloneFileHasTheStandaloneLayout) {
  // tiny_vae is another VAE (other weights): same sizes, different numbers.
  at::Tensor z = decode_stage().at("latent");
  at::Tensor a = standalone_vae()->decode(z), b = checkpoint_vae()->decode(z);
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_GT(max_diff(a, b), 1e-3);
}

TEST(VaeModel, WeightsThatAreNotAVaeAreRefused) {
  auto set = WeightSet::from_file(SafetensorsFile::open(kModels / "checkpoints/tiny_sd15.safetensors"));
  try {
    make_vae(Weights(set, "model.diffusion_model."));
    FAIL() << "a UNet was accepted as a VAE";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "RuntimeError");
    EXPECT_NE(std::string(e.what()).find("VAE is invalid"), std::string::npos) << e.what();
  }
}

TEST(VaeDecode, LatentWithWrongChannelsIsARuntimeError) {
  try {
    checkpoint_vae()->decode(at::zeros({1, 3, 8, 8}));
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "RuntimeError");
  }
}

// ---- tiled_scale ----

// A pointwise function (here an affine map with a nearest x8 upscale) gives the same result
// tiled as whole: the feathered weights of every output pixel sum to what divides them.
TEST(TiledScale, PointwiseFunctionIsUnchangedByTiling) {
  at::Tensor x = at::randn({2, 4, 21, 30});
  auto fn = [](const at::Tensor& t) {
    return at::upsample_nearest2d(t.narrow(1, 0, 3) * 2.0 + 1.0, {t.size(2) * 8, t.size(3) * 8});
  };
  at::Tensor whole = fn(x);
  at::Tensor tiled = tiled_scale(x, fn, 8, 6, 2, 8.0, 3);
  ASSERT_EQ(tiled.sizes(), whole.sizes());
  EXPECT_LE(max_diff(tiled, whole), 1e-5);
}

// The blending weights for one tiled row, worked by hand from comfy.utils.tiled_scale_multidim:
// width 6, tile 4, overlap 2 -> positions range(0, 4, 2) = [0, 2]; feather round(2*1) = 2, so
// each tile's mask is [0.5, 1, 1, 0.5]. A function returning a tile-constant value c (1 then 2)
// gives out = sum(mask * c) / sum(mask).
TEST(TiledScale, FeatherWeightsFollowComfyUI) {
  at::Tensor x = at::zeros({1, 1, 1, 6});
  int calls = 0;
  auto fn = [&](const at::Tensor& t) { return at::full_like(t, static_cast<double>(++calls)); };
  at::Tensor out = tiled_scale(x, fn, 4, 1, 2, 1.0, 1).flatten();
  // Along H (size 1) the feather 2 >= 1 leaves the mask alone.
  // Pixel 2 is tile 1's third (weight 1) and tile 2's first (weight 0.5); pixel 3 the reverse.
  std::vector<double> expected{1.0, 1.0, (1.0 * 1.0 + 2.0 * 0.5) / 1.5, (1.0 * 0.5 + 2.0 * 1.0) / 1.5, 2.0, 2.0};
  ASSERT_EQ(out.numel(), 6);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(out[i].item<double>(), expected[i], 1e-6) << i;
  EXPECT_EQ(calls, 2);
}

TEST(VaeDecodeTiled, OneTileEqualsTheUntiledDecode) {
  at::Tensor z = decode_stage().at("latent");
  at::Tensor tiled = checkpoint_vae()->decode_tiled(z, 64, 64, 16);
  EXPECT_LE(max_diff(tiled, decode_stage().at("image")), 1e-4);
}

TEST(VaeDecodeTiled, SmallTilesStayCloseToTheUntiledDecode) {
  // Latents on the scale of the recorded one (randn x 4.39).
  at::Generator gen = at::detail::createCPUGenerator(7);
  at::Tensor z = at::randn({1, 4, 16, 16}, gen) * 4.39, other = at::randn({1, 4, 16, 16}, gen) * 4.39;
  at::Tensor whole = checkpoint_vae()->decode(z);
  at::Tensor tiled = checkpoint_vae()->decode_tiled(z, 8, 8, 2);
  ASSERT_EQ(tiled.sizes(), whole.sizes());
  // Tiles see less context than the whole latent, so the pixels differ somewhat; but far less
  // than the decode of another latent does.
  double tiled_diff = (tiled - whole).abs().mean().item<double>();
  double other_diff = (checkpoint_vae()->decode(other) - whole).abs().mean().item<double>();
  EXPECT_LT(tiled_diff, 0.25 * other_diff);
}

TEST(VaeDecode, TilesByItselfWhenMemoryIsShort) {
  // ComfyUI's VAEDecode falls back to decode_tiled_ (64/64/16) when the decode runs out of
  // memory; here the estimate against the available memory decides.
  at::Generator gen = at::detail::createCPUGenerator(11);
  at::Tensor z = at::randn({1, 4, 80, 72}, gen) * 4.39;
  ::setenv("COMFY_MEMORY_AVAILABLE_MB", "1", 1);
  at::Tensor short_of_memory = checkpoint_vae()->decode(z);
  ::unsetenv("COMFY_MEMORY_AVAILABLE_MB");
  at::Tensor tiled = checkpoint_vae()->decode_tiled(z, 64, 64, 16);
  at::Tensor whole = checkpoint_vae()->decode(z);
  ASSERT_EQ(short_of_memory.sizes(), whole.sizes());
  EXPECT_TRUE(at::equal(short_of_memory, tiled));
  EXPECT_FALSE(at::equal(whole, tiled));  // 80 > 64: the tiled decode really has several tiles
}

TEST(VaeEncodeTiled, OneTileEqualsTheUntiledEncode) {
  at::Tensor latent = checkpoint_vae()->encode_tiled(encode_stage().at("image"), 512, 512, 64);
  EXPECT_LE(max_diff(latent, encode_stage().at("latent")), 3e-4);
}

TEST(PixelSpaceVae, MapsImagesToMinusOneOne) {
  auto vae = Vae::pixel_space();
  at::Tensor image = at::rand({1, 5, 7, 3});
  at::Tensor latent = vae->encode(image);
  ASSERT_EQ(latent.sizes(), (std::vector<int64_t>{1, 3, 5, 7}));
  EXPECT_LE(max_diff(latent, image.permute({0, 3, 1, 2}) * 2 - 1), 1e-6);
  EXPECT_LE(max_diff(vae->decode(latent), image), 1e-6);
}

}  // namespace
}  // namespace comfy::testing
