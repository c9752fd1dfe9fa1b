// The VAE nodes against ComfyUI's recorded outputs: VAEDecode/VAEEncode stages, the encoded
// latents of the img2img and VAEEncodeForInpaint workflows, the PNGs decoded by the checkpoint's
// and the standalone VAE, VAELoader's list, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "io/image.h"
#include "models/conditioning.h"
#include "nodes/image_save.h"
#include "nodes/latent_runner.h"

namespace comfy::testing {
namespace {

const std::map<std::string, at::Tensor>& stage(const std::string& name) {
  static std::map<std::string, std::map<std::string, at::Tensor>> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, read_safetensors_f32((kReference / "stages" / (name + ".safetensors")).string())).first;
  return it->second;
}

// Max |ours - theirs| over the 8-bit pixels SaveImage would write for `image` [1,H,W,3] and the
// recorded PNG.
int max_u8_diff(const at::Tensor& image, const std::filesystem::path& png) {
  io::DecodedImage d = io::read_image(png);
  std::vector<uint8_t> ours = image_to_u8(image[0]);
  const auto& theirs = d.frames.at(0).pixels;
  EXPECT_EQ(d.channels, 3);
  EXPECT_EQ(ours.size(), theirs.size());
  int worst = 0;
  for (size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) worst = std::max(worst, std::abs(ours[i] - theirs[i]));
  return worst;
}

TEST(VAEDecode, MatchesTheComfyUIStage) {
  LatentFolders f;
  at::Tensor image = f.image("VAEDecode", {{"samples", lat(stage("vae_decode_8x8").at("latent"))},
                                           {"vae", vae_value(checkpoint_vae())}});
  EXPECT_LE(max_diff(image, stage("vae_decode_8x8").at("image")), 1e-4);
}

TEST(VAEEncode, OfLoadImageMatchesComfyUI) {
  LatentFolders f;
  at::Tensor pixels = f.load_image("scene_64x64.png");
  EXPECT_LE(max_diff(pixels, stage("vae_encode_scene_64x64").at("image")), 0.0);
  Latent l = f.latent("VAEEncode", {{"pixels", tensor_value(pixels)}, {"vae", vae_value(checkpoint_vae())}});
  EXPECT_LE(max_diff(l.samples, stage("vae_encode_scene_64x64").at("latent")), 3e-4);
  EXPECT_LE(max_diff(l.samples, recorded_latent("img2img_denoise0.6", "encoded")), 3e-4);
  EXPECT_FALSE(l.noise_mask.defined());
}

TEST(VAEEncodeForInpaint, MatchesComfyUIWithGrowMaskBy6) {
  LatentFolders f;
  at::Tensor pixels = f.load_image("scene_64x64.png");
  at::Tensor mask = tensor_of(f.run("LoadImageMask", {{"image", str("mask_64x64.png")}, {"channel", str("red")}}).result[0], "MASK");
  Latent l = f.latent("VAEEncodeForInpaint", {{"pixels", tensor_value(pixels)}, {"vae", vae_value(checkpoint_vae())},
                                              {"mask", tensor_value(mask)}, {"grow_mask_by", integer(6)}});
  EXPECT_LE(max_diff(l.samples, recorded_latent("inpaint_vaeencodeforinpaint", "encoded")), 3e-4);
  // noise_mask: round(mask) grown by a 6x6 box (padding ceil(5/2) = 3), clamped, cut to 64x64.
  at::Tensor m = mask.reshape({1, 1, 64, 64}).round();
  at::Tensor grown = at::clamp(at::conv2d(m, at::ones({1, 1, 6, 6}), {}, 1, 3), 0, 1).slice(2, 0, 64).slice(3, 0, 64).round();
  ASSERT_EQ(l.noise_mask.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
  EXPECT_TRUE(l.noise_mask.equal(grown));
  EXPECT_GT(grown.sum().item<float>(), m.sum().item<float>());  // it did grow
}

TEST(InpaintModelConditioning, SetsConcatLatentAndMaskOnEveryEntry) {
  LatentFolders f;
  at::Tensor pixels = f.load_image("scene_64x64.png");
  at::Tensor mask = tensor_of(f.run("LoadImageMask", {{"image", str("mask_64x64.png")}, {"channel", str("red")}}).result[0], "MASK");
  Conditioning c;
  c.entries.push_back(CondEntry{at::zeros({1, 77, 128}), {}});
  c.entries.push_back(CondEntry{at::ones({1, 77, 128}), {}});
  NodeOutput out = f.run("InpaintModelConditioning",
                         {{"positive", conditioning_value(c)}, {"negative", conditioning_value(c)},
                          {"vae", vae_value(checkpoint_vae())}, {"pixels", tensor_value(pixels)},
                          {"mask", tensor_value(mask)}, {"noise_mask", Value(json(true))}});
  // The masked-pixel latent is what VAEEncodeForInpaint encodes (same crop and grey fill).
  at::Tensor inpaint = recorded_latent("inpaint_vaeencodeforinpaint", "encoded");
  for (size_t slot : {0u, 1u}) {
    const Conditioning& r = conditioning_of(out.result[slot]);
    ASSERT_EQ(r.entries.size(), 2u);
    for (auto& e : r.entries) {
      EXPECT_LE(max_diff(e.options.concat_latent_image, inpaint), 3e-4);
      EXPECT_EQ(e.options.concat_mask.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
    }
  }
  EXPECT_FALSE(c.entries[0].options.concat_latent_image.defined());  // inputs untouched
  const Latent& l = latent_of(out.result[2]);
  EXPECT_LE(max_diff(l.samples, stage("vae_encode_scene_64x64").at("latent")), 3e-4);  // the original pixels
  EXPECT_LE(max_diff(l.noise_mask, mask.reshape({1, 1, 64, 64})), 1e-6);               // not rounded
}

TEST(VAEDecode, CheckpointVaeGivesComfyUIsPng) {
  LatentFolders f;
  at::Tensor image = f.image("VAEDecode", {{"samples", lat(recorded_latent("hires_latentupscale_bislerp", "final"))},
                                           {"vae", vae_value(checkpoint_vae())}});
  EXPECT_LE(max_u8_diff(image, kReference / "e2e/hires_latentupscale_bislerp/final.png"), 2);
}

TEST(VAELoader, LoadsTheStandaloneVaeThatGivesComfyUIsPng) {
  LatentFolders f;
  Value vae = f.run("VAELoader", {{"vae_name", str("tiny_vae.safetensors")}}).result.at(0);
  at::Tensor image = f.image("VAEDecode", {{"samples", lat(recorded_latent("vae_loader", "final"))}, {"vae", vae}});
  EXPECT_LE(max_u8_diff(image, kReference / "e2e/vae_loader/final.png"), 2);
}

TEST(VAELoader, ListsTaesdOnlyWhenBothHalvesExist) {
  LatentFolders f;
  auto approx = f.base / "approx";
  std::filesystem::create_directories(approx);
  f.folders.add_model_folder_path("vae_approx", approx, true);
  const NodeDef* def = latent_registry().find("VAELoader");
  auto list = [&] { return def->required[0].combo(f.services); };
  EXPECT_EQ(list(), (std::vector<std::string>{"tiny_vae.safetensors", "pixel_space"}));
  std::ofstream(approx / "taesd_decoder.safetensors") << "x";
  std::ofstream(approx / "taehv.safetensors") << "x";  // video TAEs are listed as files
  EXPECT_EQ(list(), (std::vector<std::string>{"tiny_vae.safetensors", "taehv.safetensors", "pixel_space"}));
  std::ofstream(approx / "taesd_encoder.safetensors") << "x";
  EXPECT_EQ(list(), (std::vector<std::string>{"tiny_vae.safetensors", "taehv.safetensors", "taesd", "pixel_space"}));
}

// TAESD with every weight zero but the last conv's bias: the decoder outputs that bias
// everywhere, which ComfyUI maps (b - 0.5) * 2 then to the IMAGE's (x + 1) / 2; the encoder
// outputs bias / vae_scale + vae_shift (taesd: 0.18215, 0).
TEST(VAELoader, LoadsTaesdWithComfyUIsScaling) {
  LatentFolders f;
  auto approx = f.base / "approx";
  std::filesystem::create_directories(approx);
  f.folders.add_model_folder_path("vae_approx", approx, true);
  auto conv = [](std::vector<std::pair<std::string, at::Tensor>>& t, const std::string& k, int64_t in, int64_t out,
                 int64_t ks, bool bias, double b = 0.0) {
    t.emplace_back(k + ".weight", at::zeros({out, in, ks, ks}));
    if (bias) t.emplace_back(k + ".bias", at::full({out}, b));
  };
  auto block = [&](std::vector<std::pair<std::string, at::Tensor>>& t, const std::string& k) {
    for (const char* c : {".conv.0", ".conv.2", ".conv.4"}) conv(t, k + c, 64, 64, 3, true);
  };
  std::vector<std::pair<std::string, at::Tensor>> enc, dec;
  conv(enc, "0", 3, 64, 3, true);
  block(enc, "1");
  for (int base : {2, 6, 10}) {
    conv(enc, std::to_string(base), 64, 64, 3, false);
    for (int i = 1; i <= 3; ++i) block(enc, std::to_string(base + i));
  }
  conv(enc, "14", 64, 4, 3, true, 0.5);
  conv(dec, "1", 4, 64, 3, true);
  for (int base : {3, 8, 13}) {
    for (int i = 0; i < 3; ++i) block(dec, std::to_string(base + i));
    conv(dec, std::to_string(base + 4), 64, 64, 3, false);
  }
  block(dec, "18");
  conv(dec, "19", 64, 3, 3, true, 0.75);
  save_safetensors(approx / "taesd_encoder.safetensors", enc);
  save_safetensors(approx / "taesd_decoder.safetensors", dec);

  Value vae = f.run("VAELoader", {{"vae_name", str("taesd")}}).result.at(0);
  at::Tensor image = f.image("VAEDecode", {{"samples", lat(at::randn({1, 4, 3, 5}))}, {"vae", vae}});
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{1, 24, 40, 3}));
  EXPECT_LE(max_diff(image, at::full_like(image, ((0.75 - 0.5) * 2 + 1) / 2)), 1e-6);
  Latent l = f.latent("VAEEncode", {{"pixels", tensor_value(at::rand({1, 16, 24, 3}))}, {"vae", vae}});
  ASSERT_EQ(l.samples.sizes(), (std::vector<int64_t>{1, 4, 2, 3}));
  EXPECT_LE(max_diff(l.samples, at::full_like(l.samples, 0.5 / 0.18215)), 1e-5);
}

TEST(VAELoader, AFileThatIsNotAVaeIsARuntimeError) {
  LatentFolders f;
  auto dir = f.base / "vae";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModels / "loras/tiny_lora.safetensors", dir / "lora.safetensors");
  f.folders.add_model_folder_path("vae", dir, true);
  try {
    f.run("VAELoader", {{"vae_name", str("lora.safetensors")}});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "RuntimeError");
    EXPECT_NE(std::string(e.what()).find("lora.safetensors"), std::string::npos) << e.what();
  }
}

TEST(VAELoader, PixelSpaceEncodesToMinusOneOne) {
  LatentFolders f;
  Value vae = f.run("VAELoader", {{"vae_name", str("pixel_space")}}).result.at(0);
  at::Tensor pixels = at::rand({1, 16, 8, 3});
  Latent l = f.latent("VAEEncode", {{"pixels", tensor_value(pixels)}, {"vae", vae}});
  EXPECT_LE(max_diff(l.samples, pixels.permute({0, 3, 1, 2}) * 2 - 1), 1e-6);
}

TEST(VAEDecodeTiled, DefaultsOnASmallLatentEqualTheUntiledDecode) {
  LatentFolders f;
  at::Tensor image = f.image("VAEDecodeTiled", {{"samples", lat(stage("vae_decode_8x8").at("latent"))},
                                                {"vae", vae_value(checkpoint_vae())}, {"tile_size", integer(512)},
                                                {"overlap", integer(64)}, {"temporal_size", integer(64)},
                                                {"temporal_overlap", integer(8)}});
  EXPECT_LE(max_diff(image, stage("vae_decode_8x8").at("image")), 1e-4);
}

TEST(VAEEncodeTiled, DefaultsOnASmallImageEqualTheUntiledEncode) {
  LatentFolders f;
  Latent l = f.latent("VAEEncodeTiled", {{"pixels", tensor_value(stage("vae_encode_scene_64x64").at("image"))},
                                         {"vae", vae_value(checkpoint_vae())}, {"tile_size", integer(512)},
                                         {"overlap", integer(64)}, {"temporal_size", integer(64)},
                                         {"temporal_overlap", integer(8)}});
  EXPECT_LE(max_diff(l.samples, stage("vae_encode_scene_64x64").at("latent")), 3e-4);
}

TEST(VAEDecode, ANonLatentIsATypeError) {
  LatentFolders f;
  try {
    f.run("VAEDecode", {{"samples", tensor_value(at::zeros({1, 4, 8, 8}))}, {"vae", vae_value(checkpoint_vae())}});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "TypeError");
  }
  try {
    f.run("VAEDecode", {{"samples", lat(at::zeros({1, 4, 8, 8}))}, {"vae", tensor_value(at::zeros({1}))}});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "TypeError");
  }
}

}  // namespace
}  // namespace comfy::testing
