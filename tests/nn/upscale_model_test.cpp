// Upscale models (models/upscale_model.h, nn/rrdbnet.h, nn/srvgg_compact.h): the five tiny
// models of the reference set against ComfyUI 0.8.0's upscaled IMAGE, tiling against one
// untiled pass, configs of every scale from generated weights, and the errors for files that
// are not upscale models we run.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "models/upscale_model.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = COMFY_TEST_DATA;
const fs::path kModels = kFixtures / "models" / "upscale_models";

// The IMAGE LoadImage makes of an RGB PNG: [1,H,W,3] f32, value/255.
at::Tensor load_image(const fs::path& p) {
  io::DecodedImage d = io::read_image(p);
  const io::Frame& f = d.frames.at(0);
  at::Tensor t = at::tensor(std::vector<int64_t>(f.pixels.begin(), f.pixels.end()), at::kLong)
                     .reshape({f.height, f.width, d.channels})
                     .narrow(2, 0, 3)
                     .to(at::kFloat);
  return (t / 255.0).unsqueeze(0);
}

fs::path temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("comfy-upscale-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

double max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

// ---- ComfyUI's results

struct Case {
  const char* model;
  int64_t scale;
};

class TinyUpscaler : public ::testing::TestWithParam<Case> {};

TEST_P(TinyUpscaler, MatchesComfyUI) {
  c10::InferenceMode guard;
  const Case c = GetParam();
  auto model = load_upscale_model(kModels / (std::string("tiny_") + c.model + ".safetensors"));
  EXPECT_EQ(model->scale, c.scale) << model->describe();
  at::Tensor image = load_image(kFixtures / "reference" / "inputs" / "scene_32x32.png");
  at::Tensor ours = upscale_with_model(*model, image);
  at::Tensor ref = read_safetensors_f32(
      (kFixtures / "reference" / "e2e" / (std::string("upscale_") + c.model) / "upscaled.image.safetensors").string())
                       .at("image");
  ASSERT_EQ(ours.sizes(), ref.sizes());
  const double diff = max_diff(ours, ref);
  std::cout << "  " << c.model << " (" << model->describe() << "): max |diff| " << diff << "\n";
  EXPECT_LE(diff, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Reference, TinyUpscaler,
                         ::testing::Values(Case{"esrgan_x4_old", 4}, Case{"esrgan_x2_old", 2}, Case{"esrgan_x4_new", 4},
                                           Case{"esrgan_x2_new_unshuffle", 2}, Case{"compact_x4", 4}),
                         [](const auto& info) { return std::string(info.param.model); });

TEST(UpscaleModel, DetectsTheReferenceConfigs) {
  auto old4 = load_upscale_model(kModels / "tiny_esrgan_x4_old.safetensors");
  const auto& c = std::get<nn::RRDBNetConfig>(old4->config);
  EXPECT_EQ(old4->architecture, "ESRGAN");
  EXPECT_EQ(c.nf, 16);
  EXPECT_EQ(c.nb, 1);
  EXPECT_EQ(c.gc, 32);
  EXPECT_EQ(c.upsamples, 2);
  EXPECT_EQ(c.hr, "model.8.");
  EXPECT_EQ(c.last, "model.10.");
  auto unshuffle = load_upscale_model(kModels / "tiny_esrgan_x2_new_unshuffle.safetensors");
  const auto& u = std::get<nn::RRDBNetConfig>(unshuffle->config);
  EXPECT_EQ(u.shuffle, 2);
  EXPECT_EQ(u.in_nc, 12);
  EXPECT_EQ(unshuffle->input_channels, 3);
  EXPECT_EQ(unshuffle->scale, 2);
  EXPECT_EQ(unshuffle->size_multiple_of, 4);
  auto compact = load_upscale_model(kModels / "tiny_compact_x4.safetensors");
  const auto& k = std::get<nn::SRVGGCompactConfig>(compact->config);
  EXPECT_EQ(compact->architecture, "Compact");
  EXPECT_EQ(k.num_conv, 2);
  EXPECT_EQ(k.num_feat, 16);
  EXPECT_EQ(k.scale, 4);
}

// ---- tiling

// Inputs wider than the 512-pixel tile, run by ComfyUI itself (tools/oracle/record_upscale_tiles.py):
// two tiles each, blended; the unshuffle model's second tile (122 wide) is padded and cropped.
TEST(UpscaleTiling, WideImagesMatchComfyUI) {
  c10::InferenceMode guard;
  auto recorded = read_safetensors_f32((kFixtures / "upscale" / "tiled.safetensors").string());
  for (auto [name, file] : {std::pair<std::string, std::string>{"compact_x4", "tiny_compact_x4"},
                            {"esrgan_x2_unshuffle", "tiny_esrgan_x2_new_unshuffle"}}) {
    auto model = load_upscale_model(kModels / (file + ".safetensors"));
    const at::Tensor& input = recorded.at(name + ".input");
    const at::Tensor& ref = recorded.at(name + ".output");
    ASSERT_GT(input.size(2), 512) << name;
    int64_t tiles = 0;
    at::Tensor ours = upscale_with_model(*model, input, 512, 32, [&](int64_t, int64_t t) { tiles = t; });
    EXPECT_EQ(tiles, 2 * input.size(0)) << name;
    ASSERT_EQ(ours.sizes(), ref.sizes()) << name;
    const double diff = max_diff(ours, ref);
    std::cout << "  " << name << " " << input.sizes() << ": max |diff| " << diff << "\n";
    EXPECT_LE(diff, 1e-4) << name;
  }
}

// A Compact net whose 3x3 kernels only have their centre tap sees one pixel: tiled and untiled
// must then agree up to rounding, whatever the blend weights, so any misplaced tile, feather or
// normalisation shows.
std::unordered_map<std::string, at::Tensor> pointwise_compact(int64_t scale) {
  at::manual_seed(7);
  auto centre = [](int64_t out, int64_t in) {
    at::Tensor w = at::zeros({out, in, 3, 3});
    w.select(3, 1).select(2, 1).copy_(at::randn({out, in}) * 0.3);
    return w;
  };
  return {{"body.0.weight", centre(8, 3)},           {"body.0.bias", at::randn({8}) * 0.1},
          {"body.1.weight", at::rand({8}) * 0.3},      {"body.2.weight", centre(8, 8)},
          {"body.2.bias", at::randn({8}) * 0.1},       {"body.3.weight", at::rand({8}) * 0.3},
          {"body.4.weight", centre(3 * scale * scale, 8)}, {"body.4.bias", at::randn({3 * scale * scale}) * 0.1}};
}

TEST(UpscaleTiling, PointwiseNetGivesTheUntiledResult) {
  c10::InferenceMode guard;
  auto model = make_upscale_model(WeightSet::from_tensors(pointwise_compact(2)), "pointwise");
  at::manual_seed(3);
  at::Tensor image = at::rand({2, 37, 50, 3});
  at::Tensor whole = upscale_with_model(*model, image);
  at::Tensor tiled = upscale_with_model(*model, image, 16, 4);
  ASSERT_EQ(whole.sizes(), (std::vector<int64_t>{2, 74, 100, 3}));
  ASSERT_EQ(tiled.sizes(), whole.sizes());
  EXPECT_LE(max_diff(tiled, whole), 1e-5);
}

// The real tiny Compact model sees 4 pixels around each one (four 3x3 convs). With tiles of 32
// and overlap 8 over 56 pixels the tiles are [0,32) and [24,56): away from the seam (input
// rows/columns < 20 or >= 36, at least 12 pixels inside the only tile covering them) the result
// is the untiled one; in the seam it is a blend of two tiles that each saw a cut image.
TEST(UpscaleTiling, RealNetDiffersOnlyAtTheSeams) {
  c10::InferenceMode guard;
  auto model = load_upscale_model(kModels / "tiny_compact_x4.safetensors");
  at::manual_seed(4);
  at::Tensor image = at::rand({1, 56, 56, 3});
  at::Tensor whole = upscale_with_model(*model, image);
  at::Tensor tiled = upscale_with_model(*model, image, 32, 8);
  ASSERT_EQ(tiled.sizes(), whole.sizes());
  for (auto [y0, y1] : {std::pair<int64_t, int64_t>{0, 20}, {36, 56}})
    for (auto [x0, x1] : {std::pair<int64_t, int64_t>{0, 20}, {36, 56}}) {
      auto crop = [&](const at::Tensor& t) { return t.narrow(1, y0 * 4, (y1 - y0) * 4).narrow(2, x0 * 4, (x1 - x0) * 4); };
      EXPECT_LE(max_diff(crop(tiled), crop(whole)), 1e-5) << "block " << y0 << "," << x0;
    }
  EXPECT_GT(max_diff(tiled, whole), 1e-4) << "the seam should show the cut";
}

TEST(UpscaleTiling, ReportsOneTickPerTile) {
  c10::InferenceMode guard;
  auto model = make_upscale_model(WeightSet::from_tensors(pointwise_compact(1)), "pointwise");
  std::vector<std::pair<int64_t, int64_t>> ticks;
  upscale_with_model(*model, at::rand({2, 37, 50, 3}), 16, 4, [&](int64_t v, int64_t t) { ticks.emplace_back(v, t); });
  // comfy.utils.get_tiled_scale_steps: ceil((37-4)/12) = 3 rows, ceil((50-4)/12) = 4 columns, per image.
  EXPECT_EQ(tiled_scale_steps(50, 37, 16, 16, 4), 12);
  ASSERT_EQ(ticks.size(), 24u);
  EXPECT_EQ(ticks.front(), (std::pair<int64_t, int64_t>{1, 24}));
  EXPECT_EQ(ticks.back(), (std::pair<int64_t, int64_t>{24, 24}));
  ticks.clear();
  upscale_with_model(*model, at::rand({1, 20, 20, 3}), 512, 32, [&](int64_t v, int64_t t) { ticks.emplace_back(v, t); });
  EXPECT_EQ(ticks, (std::vector<std::pair<int64_t, int64_t>>{{1, 1}}));
}

// ---- generated RRDBNets of every scale

// Random ESRGAN weights in the original layout: nf 8, gc 4, `nb` blocks, `ups` upsamples, a
// first conv taking `in_nc` channels.
std::unordered_map<std::string, at::Tensor> random_esrgan_old(int64_t in_nc, int64_t nb, int64_t ups) {
  at::manual_seed(11);
  const int64_t nf = 8, gc = 4;
  std::unordered_map<std::string, at::Tensor> t;
  auto conv = [&](const std::string& p, int64_t out, int64_t in) {
    t[p + "weight"] = at::randn({out, in, 3, 3}) * 0.1;
    t[p + "bias"] = at::randn({out}) * 0.01;
  };
  conv("model.0.", nf, in_nc);
  for (int64_t b = 0; b < nb; ++b)
    for (int r = 1; r <= 3; ++r)
      for (int c = 1; c <= 5; ++c)
        conv("model.1.sub." + std::to_string(b) + ".RDB" + std::to_string(r) + ".conv" + std::to_string(c) + ".0.",
             c == 5 ? nf : gc, nf + (c - 1) * gc);
  conv("model.1.sub." + std::to_string(nb) + ".", nf, nf);
  for (int64_t i = 1; i <= ups; ++i) conv("model." + std::to_string(3 * i) + ".", nf, nf);
  conv("model." + std::to_string(3 * ups + 2) + ".", nf, nf);
  conv("model." + std::to_string(3 * ups + 4) + ".", 3, nf);
  return t;
}

// The same weights under the Real-ESRGAN names.
std::unordered_map<std::string, at::Tensor> to_new_layout(const std::unordered_map<std::string, at::Tensor>& old,
                                                          int64_t nb, int64_t ups) {
  std::unordered_map<std::string, at::Tensor> t;
  for (auto& [k, v] : old) {
    std::string n = k;
    const std::string sub = "model.1.sub.";
    if (k.rfind(sub, 0) == 0) {
      std::string rest = k.substr(sub.size());
      size_t dot = rest.find('.');
      int64_t b = std::stoll(rest.substr(0, dot));
      if (b == nb) {
        n = "conv_body." + rest.substr(dot + 1);
      } else {  // <b>.RDB<r>.conv<c>.0.<kind>
        std::string r = rest.substr(dot + 4, 1), c = rest.substr(dot + 10, 1);
        n = "body." + std::to_string(b) + ".rdb" + r + ".conv" + c + "." + rest.substr(rest.rfind('.') + 1);
      }
    } else {
      size_t dot = k.find('.', 6);
      int64_t i = std::stoll(k.substr(6, dot - 6));
      std::string kind = k.substr(dot + 1);
      if (i == 0) n = "conv_first." + kind;
      else if (i == 3 * ups + 2) n = "conv_hr." + kind;
      else if (i == 3 * ups + 4) n = "conv_last." + kind;
      else n = "conv_up" + std::to_string(i / 3) + "." + kind;
    }
    t[n] = v;
  }
  return t;
}

struct Shape {
  int64_t in_nc, nb, ups, scale, shuffle;
};

class GeneratedEsrgan : public ::testing::TestWithParam<Shape> {};

TEST_P(GeneratedEsrgan, RunsAtItsScaleInBothLayouts) {
  c10::InferenceMode guard;
  const Shape s = GetParam();
  auto old_w = random_esrgan_old(s.in_nc, s.nb, s.ups);
  auto old_model = make_upscale_model(WeightSet::from_tensors(old_w), "old");
  auto new_model = make_upscale_model(WeightSet::from_tensors(to_new_layout(old_w, s.nb, s.ups)), "new");
  for (auto* m : {old_model.get(), new_model.get()}) {
    EXPECT_EQ(m->scale, s.scale) << m->describe();
    EXPECT_EQ(m->input_channels, 3);
    EXPECT_EQ(std::get<nn::RRDBNetConfig>(m->config).nb, s.nb);
    EXPECT_EQ(std::get<nn::RRDBNetConfig>(m->config).shuffle, s.shuffle);
  }
  EXPECT_EQ(std::get<nn::RRDBNetConfig>(new_model->config).layout, nn::RRDBNetConfig::Layout::RealESRGAN);
  at::manual_seed(5);
  at::Tensor image = at::rand({1, 7, 9, 3});  // odd sizes: the unshuffled variants pad and crop
  at::Tensor a = upscale_with_model(*old_model, image), b = upscale_with_model(*new_model, image);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 7 * s.scale, 9 * s.scale, 3}));
  EXPECT_EQ(max_diff(a, b), 0.0) << "the two layouts are one network";
  EXPECT_GE(a.min().item<double>(), 0.0);
  EXPECT_LE(a.max().item<double>(), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Scales, GeneratedEsrgan,
                         ::testing::Values(Shape{3, 1, 0, 1, 1}, Shape{3, 2, 1, 2, 1}, Shape{3, 1, 3, 8, 1},
                                           Shape{12, 1, 2, 2, 2}, Shape{48, 1, 2, 1, 4}, Shape{3, 3, 2, 4, 1}),
                         [](const auto& info) {
                           return "x" + std::to_string(info.param.scale) + "_in" + std::to_string(info.param.in_nc) +
                                  "_nb" + std::to_string(info.param.nb);
                         });

// ---- errors

std::string load_error(const fs::path& p) {
  try {
    load_upscale_model(p);
  } catch (const ComfyError& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(UpscaleModelErrors, UnknownLayoutNamesTheFileAndWhatItLooksLike) {
  fs::path p = temp_path("not_an_upscaler.safetensors");
  save_safetensors(p, {{"foo.weight", at::ones({2, 2})}});
  std::string msg = load_error(p);
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("foo.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ESRGAN"), std::string::npos) << msg;

  fs::path swin = temp_path("swinir.safetensors");
  save_safetensors(swin, {{"module.layers.0.residual_group.blocks.0.norm1.weight", at::ones({4})},
                          {"module.conv_first.weight", at::ones({4, 3, 3, 3})}});
  msg = load_error(swin);
  EXPECT_NE(msg.find("SwinIR"), std::string::npos) << msg;

  msg = load_error(kFixtures / "models" / "vae" / "tiny_vae.safetensors");
  EXPECT_NE(msg.find("VAE"), std::string::npos) << msg;
}

TEST(UpscaleModelErrors, ModulePrefixIsStripped) {
  auto w = pointwise_compact(2);
  std::unordered_map<std::string, at::Tensor> prefixed;
  for (auto& [k, v] : w) prefixed["module." + k] = v;
  auto model = make_upscale_model(WeightSet::from_tensors(prefixed), "prefixed");
  EXPECT_EQ(model->architecture, "Compact");
  EXPECT_EQ(model->scale, 2);
}

TEST(UpscaleModelErrors, TruncatedFileIsAClearError) {
  fs::path src = kModels / "tiny_compact_x4.safetensors";
  fs::path p = temp_path("truncated.safetensors");
  {
    std::ifstream in(src, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  std::string msg = load_error(p);
  EXPECT_NE(msg, "(loaded)");
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
}

// .pth files go through the restricted unpickler (io/pickle.h); a broken one is a clear error.
TEST(UpscaleModelErrors, ACorruptPickleIsAClearError) {
  fs::path p = temp_path("RealESRGAN_x4plus.pth");
  std::ofstream(p) << "not read";
  std::string msg = load_error(p);
  EXPECT_NE(msg.find("pickle"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
}

TEST(UpscaleModelErrors, InconsistentRrdbIsRefused) {
  auto w = random_esrgan_old(3, 1, 2);
  w.erase("model.6.weight");  // the second upsample conv
  w.erase("model.6.bias");
  try {
    make_upscale_model(WeightSet::from_tensors(w), "broken");
    FAIL() << "loaded";
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("broken"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model.6.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace comfy::testing
