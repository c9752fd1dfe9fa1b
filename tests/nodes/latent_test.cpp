// The LATENT nodes against ComfyUI: LatentUpscale against the recorded hires-fix latents, the
// pure-torch nodes against their ComfyUI formulas worked out here, SaveLatent byte for byte
// against a ComfyUI .latent file, and bad inputs.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "nodes/latent_runner.h"

namespace comfy::testing {
namespace {

std::vector<uint8_t> file_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// ---- LatentUpscale: the hires-fix cases upscale pass1 (64x64 px) to 96x96 px ----

class LatentUpscaleRecorded : public ::testing::TestWithParam<std::string> {};

TEST_P(LatentUpscaleRecorded, MatchesComfyUI) {
  LatentFolders f;
  const std::string id = "hires_latentupscale_" + GetParam();
  Latent out = f.latent("LatentUpscale", {{"samples", lat(recorded_latent(id, "pass1"))},
                                          {"upscale_method", str(GetParam())},
                                          {"width", integer(96)},
                                          {"height", integer(96)},
                                          {"crop", str("disabled")}});
  at::Tensor expected = recorded_latent(id, "upscaled");
  ASSERT_EQ(out.samples.sizes(), expected.sizes());
  EXPECT_LE(max_diff(out.samples, expected), 1e-3);  // the manifest's atol for these latents
}

INSTANTIATE_TEST_SUITE_P(Methods, LatentUpscaleRecorded,
                         ::testing::Values("nearest-exact", "bilinear", "area", "bicubic", "bislerp"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

TEST(LatentUpscale, ZeroSideKeepsTheAspectRatioAndAMinimumOf64) {
  LatentFolders f;
  at::Tensor s = at::randn({1, 4, 8, 16});
  auto run = [&](int64_t w, int64_t h) {
    return f.latent("LatentUpscale", {{"samples", lat(s)}, {"upscale_method", str("nearest-exact")},
                                      {"width", integer(w)}, {"height", integer(h)}, {"crop", str("disabled")}})
        .samples;
  };
  // height 0: width 256 -> height round(8 * 256 / 16) = 128 px -> 16 x 32 latent.
  EXPECT_EQ(run(256, 0).sizes(), (std::vector<int64_t>{1, 4, 16, 32}));
  // width 0, height 16 -> height 64 (minimum), width round(16 * 64 / 8) = 128.
  EXPECT_EQ(run(0, 16).sizes(), (std::vector<int64_t>{1, 4, 8, 16}));
  // both 0: unchanged.
  EXPECT_TRUE(run(0, 0).equal(s));
}

TEST(LatentUpscaleBy, ScalesEachSideAndRounds) {
  LatentFolders f;
  at::Tensor s = at::randn({2, 4, 8, 10});
  Latent out = f.latent("LatentUpscaleBy", {{"samples", lat(s)}, {"upscale_method", str("bilinear")}, {"scale_by", num(1.5)}});
  ASSERT_EQ(out.samples.sizes(), (std::vector<int64_t>{2, 4, 12, 15}));
  EXPECT_LE(max_diff(out.samples, at::upsample_bilinear2d(s, {12, 15}, false)), 1e-6);
}

TEST(EmptyLatentImage, ZerosOfAnEighthOfThePixels) {
  LatentFolders f;
  Latent l = f.latent("EmptyLatentImage", {{"width", integer(96)}, {"height", integer(64)}, {"batch_size", integer(3)}});
  EXPECT_EQ(l.samples.sizes(), (std::vector<int64_t>{3, 4, 8, 12}));
  EXPECT_EQ(l.samples.abs().sum().item<float>(), 0.0f);
  EXPECT_FALSE(l.noise_mask.defined());
  EXPECT_FALSE(l.batch_index.has_value());
}

// ---- arithmetic (comfy_extras/nodes_latent.py) ----

TEST(LatentAdd, AddsAfterReshapingTheSecondToTheFirst) {
  LatentFolders f;
  at::Tensor a = at::randn({3, 4, 8, 8}), b = at::randn({1, 4, 4, 4});
  Latent out = f.latent("LatentAdd", {{"samples1", lat(a)}, {"samples2", lat(b)}});
  // reshape_latent_to: bilinear to 8x8 (same aspect: no crop), then repeated to batch 3.
  at::Tensor b8 = at::upsample_bilinear2d(b, {8, 8}, false).repeat({3, 1, 1, 1});
  EXPECT_LE(max_diff(out.samples, a + b8), 1e-6);
  Latent sub = f.latent("LatentSubtract", {{"samples1", lat(a)}, {"samples2", lat(a)}});
  EXPECT_EQ(sub.samples.abs().max().item<float>(), 0.0f);
}

TEST(LatentMultiply, ScalesAndKeepsTheMask) {
  LatentFolders f;
  Latent in;
  in.samples = at::randn({1, 4, 4, 4});
  in.noise_mask = at::ones({1, 1, 4, 4});
  Latent out = f.latent("LatentMultiply", {{"samples", lat(in)}, {"multiplier", num(-2.5)}});
  EXPECT_LE(max_diff(out.samples, in.samples * -2.5), 0.0);
  EXPECT_TRUE(out.noise_mask.defined());
}

TEST(LatentInterpolate, SlerpsMagnitudesAndDirectionsPerPixel) {
  LatentFolders f;
  at::Tensor a = at::randn({1, 4, 3, 5}), b = at::randn({1, 4, 3, 5});
  const double r = 0.3;
  Latent out = f.latent("LatentInterpolate", {{"samples1", lat(a)}, {"samples2", lat(b)}, {"ratio", num(r)}});
  // ComfyUI: directions mixed, renormalised, times the mixed norms (norms over channels).
  at::Tensor ma = a.norm(2, 1, true), mb = b.norm(2, 1, true);
  at::Tensor t = (a / ma) * r + (b / mb) * (1 - r);
  at::Tensor expected = t / t.norm(2, 1, true) * (ma * r + mb * (1 - r));
  EXPECT_LE(max_diff(out.samples, expected), 1e-5);
  Latent one = f.latent("LatentInterpolate", {{"samples1", lat(a)}, {"samples2", lat(b)}, {"ratio", num(1.0)}});
  EXPECT_LE(max_diff(one.samples, a), 1e-5);
}

// ---- batches ----

TEST(LatentBatch, ConcatenatesAndNumbersTheItems) {
  LatentFolders f;
  at::Tensor a = at::randn({2, 4, 8, 8}), b = at::randn({1, 4, 8, 8});
  Latent out = f.latent("LatentBatch", {{"samples1", lat(a)}, {"samples2", lat(b)}});
  EXPECT_TRUE(out.samples.equal(at::cat({a, b}, 0)));
  EXPECT_EQ(*out.batch_index, (std::vector<int64_t>{0, 1, 0}));
}

TEST(LatentFromBatch, TakesASliceAndRecordsItsIndices) {
  LatentFolders f;
  at::Tensor s = at::randn({4, 4, 2, 2});
  Latent out = f.latent("LatentFromBatch", {{"samples", lat(s)}, {"batch_index", integer(1)}, {"length", integer(2)}});
  EXPECT_TRUE(out.samples.equal(s.narrow(0, 1, 2)));
  EXPECT_EQ(*out.batch_index, (std::vector<int64_t>{1, 2}));
}

TEST(LatentFromBatch, IndexBeyondTheBatchTakesTheLastItem) {
  // ComfyUI clamps: batch_index = min(B - 1, index), length = min(B - index, length).
  LatentFolders f;
  Latent in;
  in.samples = at::randn({3, 4, 2, 2});
  in.noise_mask = at::rand({3, 1, 2, 2});
  Latent out = f.latent("LatentFromBatch", {{"samples", lat(in)}, {"batch_index", integer(10)}, {"length", integer(5)}});
  EXPECT_TRUE(out.samples.equal(in.samples.narrow(0, 2, 1)));
  EXPECT_TRUE(out.noise_mask.equal(in.noise_mask.narrow(0, 2, 1)));
  EXPECT_EQ(*out.batch_index, (std::vector<int64_t>{2}));
}

TEST(RepeatLatentBatch, RepeatsItemsAndOffsetsBatchIndices) {
  LatentFolders f;
  Latent in;
  in.samples = at::randn({2, 4, 2, 2});
  in.batch_index = std::vector<int64_t>{3, 4};
  Latent out = f.latent("RepeatLatentBatch", {{"samples", lat(in)}, {"amount", integer(3)}});
  EXPECT_TRUE(out.samples.equal(in.samples.repeat({3, 1, 1, 1})));
  EXPECT_EQ(*out.batch_index, (std::vector<int64_t>{3, 4, 5, 6, 7, 8}));
}

// ---- transforms ----

TEST(LatentTransforms, RotateFlipAndCrop) {
  LatentFolders f;
  at::Tensor s = at::arange(2 * 4 * 10 * 12, at::kFloat).reshape({2, 4, 10, 12});
  Latent r = f.latent("LatentRotate", {{"samples", lat(s)}, {"rotation", str("90 degrees")}});
  EXPECT_TRUE(r.samples.equal(at::rot90(s, 1, {3, 2})));  // clockwise
  EXPECT_EQ(r.samples.sizes(), (std::vector<int64_t>{2, 4, 12, 10}));
  Latent fl = f.latent("LatentFlip", {{"samples", lat(s)}, {"flip_method", str("y-axis: horizontally")}});
  EXPECT_TRUE(fl.samples.equal(s.flip(3)));
  // x 48 px -> 6, but at most W - 8 = 4; y 8 -> 1; 64x64 px -> 8x8.
  Latent c = f.latent("LatentCrop", {{"samples", lat(s)}, {"width", integer(64)}, {"height", integer(64)},
                                     {"x", integer(48)}, {"y", integer(8)}});
  EXPECT_TRUE(c.samples.equal(s.slice(2, 1, 9).slice(3, 4, 12)));
}

TEST(LatentComposite, PastesAtAnEighthOfTheOffset) {
  LatentFolders f;
  at::Tensor to = at::zeros({1, 4, 8, 8}), from = at::ones({1, 4, 4, 6});
  Latent out = f.latent("LatentComposite", {{"samples_to", lat(to)}, {"samples_from", lat(from)},
                                            {"x", integer(32)}, {"y", integer(16)}, {"feather", integer(0)}});
  at::Tensor expected = to.clone();
  expected.slice(2, 2, 6).slice(3, 4, 8).fill_(1);  // from cut to what fits: 4 wide
  EXPECT_TRUE(out.samples.equal(expected));
  EXPECT_EQ(to.abs().sum().item<float>(), 0.0f);  // the input is untouched
}

TEST(LatentCompositeMasked, BlendsThroughTheMask) {
  LatentFolders f;
  at::Tensor dest = at::zeros({1, 4, 4, 4}), src = at::full({1, 4, 2, 2}, 2.0);
  at::Tensor mask = at::tensor({1.0f, 0.0f, 0.5f, 1.0f}).reshape({1, 2, 2});
  Latent out = f.latent("LatentCompositeMasked", {{"destination", lat(dest)}, {"source", lat(src)}, {"x", integer(8)},
                                                  {"y", integer(0)}, {"resize_source", Value(json(false))},
                                                  {"mask", tensor_value(mask)}});
  at::Tensor expected = dest.clone();
  expected.slice(2, 0, 2).slice(3, 1, 3).copy_(mask.unsqueeze(1).expand({1, 4, 2, 2}) * 2.0);
  EXPECT_LE(max_diff(out.samples, expected), 1e-6);
}

TEST(LatentBlend, MixesByTheFactor) {
  LatentFolders f;
  at::Tensor a = at::randn({1, 4, 4, 4}), b = at::randn({1, 4, 4, 4});
  Latent out = f.latent("LatentBlend", {{"samples1", lat(a)}, {"samples2", lat(b)}, {"blend_factor", num(0.25)}});
  EXPECT_LE(max_diff(out.samples, a * 0.25 + b * 0.75), 1e-6);
}

TEST(SetLatentNoiseMask, StoresTheMaskAsB1HW) {
  LatentFolders f;
  Latent out = f.latent("SetLatentNoiseMask", {{"samples", lat(at::zeros({1, 4, 8, 8}))},
                                               {"mask", tensor_value(at::ones({64, 64}))}});
  EXPECT_EQ(out.noise_mask.sizes(), (std::vector<int64_t>{1, 1, 64, 64}));
}

// ---- SaveLatent / LoadLatent ----

TEST(SaveLatent, WritesTheSameFileAsComfyUI) {
  // Re-save a ComfyUI .latent with its own prompt: the bytes must be identical.
  LatentFolders f;
  const auto original = kReference / "e2e/hires_latentupscale_bislerp/pass1.latent";
  auto file = SafetensorsFile::open(original);
  json prompt = json::parse(file->metadata()["prompt"].get<std::string>());
  NodeOutput out = f.run("SaveLatent", {{"samples", lat(recorded_latent("hires_latentupscale_bislerp", "pass1"))},
                                        {"filename_prefix", str("latents/ComfyUI")},
                                        {"prompt", Value(prompt)}});
  ASSERT_EQ(out.ui["latents"].size(), 1u);
  EXPECT_EQ(out.ui["latents"][0], (json{{"filename", "ComfyUI_00001_.latent"}, {"subfolder", "latents"}, {"type", "output"}}));
  auto saved = f.folders.output_directory() / "latents/ComfyUI_00001_.latent";
  EXPECT_EQ(file_bytes(saved), file_bytes(original));
}

TEST(SaveLatent, LoadLatentReadsItBack) {
  LatentFolders f;
  at::Tensor s = at::randn({2, 4, 3, 5});
  f.run("SaveLatent", {{"samples", lat(s)}, {"filename_prefix", str("rt")}});
  f.run("SaveLatent", {{"samples", lat(s * 2)}, {"filename_prefix", str("rt")}});  // counter goes on
  EXPECT_TRUE(std::filesystem::exists(f.folders.output_directory() / "rt_00002_.latent"));
  f.folders.set_input_directory(f.folders.output_directory());
  Latent back = f.latent("LoadLatent", {{"latent", str("rt_00001_.latent")}});
  EXPECT_TRUE(back.samples.equal(s));
  const NodeDef* def = latent_registry().find("LoadLatent");
  auto listed = def->required[0].combo(f.services);
  EXPECT_EQ(listed, (std::vector<std::string>{"rt_00001_.latent", "rt_00002_.latent"}));
}

TEST(LoadLatent, FilesWithoutTheVersionKeyAreUnscaled) {
  LatentFolders f;
  f.folders.set_input_directory(f.base);
  at::Tensor s = at::randn({1, 4, 2, 2});
  save_safetensors(f.base / "old.latent", {{"latent_tensor", s}});
  Latent back = f.latent("LoadLatent", {{"latent", str("old.latent")}});
  EXPECT_LE(max_diff(back.samples, s * (1.0 / 0.18215)), 1e-6);
}

// ---- bad input ----

TEST(LatentNodes, ANonLatentInputIsATypeError) {
  LatentFolders f;
  try {
    f.run("LatentMultiply", {{"samples", tensor_value(at::zeros({1, 4, 8, 8}))}, {"multiplier", num(2.0)}});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "TypeError");
  }
}

TEST(LatentNodes, MismatchedChannelsInLatentBatchIsARuntimeError) {
  LatentFolders f;
  try {
    f.run("LatentBatch", {{"samples1", lat(at::zeros({1, 4, 8, 8}))}, {"samples2", lat(at::zeros({1, 3, 8, 8}))}});
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "RuntimeError");
  }
}

}  // namespace
}  // namespace comfy::testing
