// nodes.py's image nodes against the real ComfyUI's outputs on the same inputs
// (tests/fixtures/images, recorded by tools/oracle/record_images.py), plus their file handling:
// counters, metadata, bad files and folders.
#include <gtest/gtest.h>

#include <regex>

#include "io/image.h"
#include "io/png.h"
#include "nodes/image_runner.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;
Value v(json j) { return Value(std::move(j)); }

// ---------------------------------------------------------------- LoadImage / LoadImageMask

class LoadImageParity : public ::testing::TestWithParam<std::string> {};

TEST_P(LoadImageParity, ImageAndMaskEqualComfyUI) {
  ImageFolders f;
  std::string file = GetParam(), tag = "load_" + gtest_name(file);
  NodeOutput out = f.run("LoadImage", {{"image", v(file)}});
  at::Tensor image = tensor_of(out.result.at(0), "IMAGE"), mask = tensor_of(out.result.at(1), "MASK");
  at::Tensor want_image = recorded(tag + "__image"), want_mask = recorded_mask(tag + "__mask");
  ASSERT_EQ(image.sizes(), want_image.sizes());
  EXPECT_EQ(max_abs_diff(image, want_image), 0.0);
  ASSERT_EQ(mask.sizes(), want_mask.sizes());
  EXPECT_EQ(max_abs_diff(mask, want_mask), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Files, LoadImageParity,
                         ::testing::Values("scene_32x32.png", "scene_64x64_alpha_hole.png", "mask_64x64.png",
                                           "gen_grey16.png", "gen_grey.png", "gen_la.png", "gen_palette_trns.png",
                                           "gen_palette.png", "gen_rgb16.png", "gen_plain.jpg", "gen_grey.jpg",
                                           "gen_exif6.jpg", "gen_exif3.png", "gen_rgba.webp", "gen_lossy.webp",
                                           "gen_anim.webp"),
                         [](const auto& info) { return gtest_name(info.param); });

TEST(LoadImage, AnimatedWebpBatchesEveryFrame) {
  ImageFolders f;
  EXPECT_EQ(f.load("gen_anim.webp").sizes(), (std::vector<int64_t>{3, 12, 20, 3}));
}

TEST(LoadImage, ExifOrientationSwapsWidthAndHeight) {
  ImageFolders f;
  EXPECT_EQ(f.load("gen_exif6.jpg").sizes(), (std::vector<int64_t>{1, 20, 12, 3}));
}

TEST(LoadImage, AnnotatedNamesReadFromTheirFolder) {
  ImageFolders f;
  fs::create_directories(f.folders.output_directory() / "sub");
  fs::copy_file(kImageFixtures / "inputs" / "gen_grey.png", f.folders.output_directory() / "sub" / "g.png");
  at::Tensor a = f.tensor("LoadImageOutput", {{"image", v("sub/g.png [output]")}});
  EXPECT_EQ(max_abs_diff(a, f.load("gen_grey.png")), 0.0);
}

class LoadImageMaskParity : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(LoadImageMaskParity, EqualsComfyUI) {
  ImageFolders f;
  auto [file, channel] = GetParam();
  at::Tensor mask = f.tensor("LoadImageMask", {{"image", v(file)}, {"channel", v(channel)}});
  at::Tensor want = recorded_mask("loadmask_" + gtest_name(file) + "_" + channel + "__mask");
  ASSERT_EQ(mask.sizes(), want.sizes());
  EXPECT_EQ(max_abs_diff(mask, want), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Files, LoadImageMaskParity,
                         ::testing::Values(std::pair<std::string, std::string>{"scene_64x64_alpha_hole.png", "alpha"},
                                           std::pair<std::string, std::string>{"gen_la.png", "alpha"},
                                           std::pair<std::string, std::string>{"gen_grey16.png", "red"},
                                           std::pair<std::string, std::string>{"gen_palette_trns.png", "alpha"},
                                           std::pair<std::string, std::string>{"gen_plain.jpg", "green"},
                                           std::pair<std::string, std::string>{"gen_exif6.jpg", "blue"}),
                         [](const auto& info) { return gtest_name(info.param.first + "_" + info.param.second); });

TEST(LoadImage, ListsOnlyImagesOfTheInputFolder) {
  ImageFolders f;
  const NodeDef* def = image_registry().find("LoadImage");
  auto files = def->required[0].combo(f.services);
  EXPECT_EQ(def->required[0].folder, "input");
  EXPECT_NE(std::find(files.begin(), files.end(), "gen_anim.webp"), files.end());
  fs::path extra = f.base / "in";
  fs::create_directories(extra / "sub");
  std::ofstream(extra / "a.png") << "x";
  std::ofstream(extra / "b.txt") << "x";
  std::ofstream(extra / "c.JPG") << "x";
  std::ofstream(extra / "sub" / "d.png") << "x";
  f.folders.set_input_directory(extra);
  EXPECT_EQ(def->required[0].combo(f.services), (std::vector<std::string>{"a.png", "c.JPG"}));
  // LoadImageMask lists every file.
  EXPECT_EQ(image_registry().find("LoadImageMask")->required[0].combo(f.services),
            (std::vector<std::string>{"a.png", "b.txt", "c.JPG"}));
}

TEST(LoadImage, ValidatorAndChangeFingerprint) {
  ImageFolders f;
  const NodeDef* def = image_registry().find("LoadImage");
  NodeInputs in;
  in.values["image"] = {v("missing.png")};
  auto r = def->validate_inputs(f.services, in, {});
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_EQ(std::get<std::string>(r), "Invalid image file: missing.png");
  EXPECT_TRUE(def->validator_takes("image"));
  EXPECT_TRUE(def->is_changed(f.services, in).is_number_float());  // NaN: always re-run
  in.values["image"] = {v("scene_32x32.png")};
  EXPECT_TRUE(std::get<bool>(def->validate_inputs(f.services, in, {})));
  EXPECT_EQ(def->is_changed(f.services, in), json("2fbd7bdf2ae85d346fbecf83cde6fd8175fa2f8fbcab1f66c99daf920532c612"));
}

TEST(LoadImage, BadFilesGiveClearErrors) {
  ImageFolders f;
  try {
    f.load("gen_not_an_image.png");
    FAIL() << "no error";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "UnidentifiedImageError");
    EXPECT_NE(std::string(e.what()).find("cannot identify image file"), std::string::npos) << e.what();
  }
  try {
    f.load("gen_corrupt.png");
    FAIL() << "no error";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "OSError") << e.what();
  }
  EXPECT_THROW(f.load("missing.png"), ComfyError);
}

// ---------------------------------------------------------------- transforms

at::Tensor padded_scene(const ImageFolders& f) {
  return f.tensor("ImagePadForOutpaint", {{"image", tensor_value(f.load("scene_32x32.png"))}, {"left", v(8)},
                                          {"top", v(0)}, {"right", v(16)}, {"bottom", v(8)}, {"feathering", v(6)}});
}

struct ScaleCase {
  std::string method;
  int w, h;
  std::string crop;
};

class ImageScaleParity : public ::testing::TestWithParam<ScaleCase> {};

TEST_P(ImageScaleParity, EqualsComfyUI) {
  ImageFolders f;
  const ScaleCase& c = GetParam();
  at::Tensor out = f.tensor("ImageScale", {{"image", tensor_value(padded_scene(f))}, {"upscale_method", v(c.method)},
                                           {"width", v(c.w)}, {"height", v(c.h)}, {"crop", v(c.crop)}});
  at::Tensor want = recorded("scale_" + c.method + "_" + std::to_string(c.w) + "x" + std::to_string(c.h) + "_" + c.crop +
                             "__image");
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_EQ(max_abs_diff(out, want), 0.0);  // lanczos included: Pillow's fixed-point resampler, reproduced
}

std::vector<ScaleCase> scale_cases() {
  std::vector<ScaleCase> out;
  for (const char* m : {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}) {
    out.push_back({m, 48, 40, "center"});
    out.push_back({m, 20, 13, "disabled"});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, ImageScaleParity, ::testing::ValuesIn(scale_cases()), [](const auto& info) {
  return gtest_name(info.param.method + "_" + std::to_string(info.param.w) + "x" + std::to_string(info.param.h) + "_" +
                    info.param.crop);
});

class ImageScaleByParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ImageScaleByParity, EqualsComfyUI) {
  ImageFolders f;
  at::Tensor out = f.tensor("ImageScaleBy", {{"image", tensor_value(f.load("scene_32x32.png"))},
                                             {"upscale_method", v(GetParam())}, {"scale_by", v(1.37)}});
  at::Tensor want = recorded("scaleby_" + GetParam() + "_1_37__image");
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_EQ(max_abs_diff(out, want), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Methods, ImageScaleByParity,
                         ::testing::Values("nearest-exact", "bilinear", "area", "bicubic", "lanczos"),
                         [](const auto& info) { return gtest_name(info.param); });

TEST(ImageScale, ZeroWidthKeepsAspectRatio) {
  ImageFolders f;
  at::Tensor out = f.tensor("ImageScale", {{"image", tensor_value(f.load("scene_32x32.png"))},
                                           {"upscale_method", v("bilinear")}, {"width", v(0)}, {"height", v(21)},
                                           {"crop", v("disabled")}});
  at::Tensor want = recorded("scale_keep_aspect__image");
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_EQ(max_abs_diff(out, want), 0.0);
}

TEST(ImagePadForOutpaint, EqualsComfyUI) {
  ImageFolders f;
  NodeOutput one = f.run("ImagePadForOutpaint", {{"image", tensor_value(f.load("scene_32x32.png"))}, {"left", v(8)},
                                                 {"top", v(0)}, {"right", v(16)}, {"bottom", v(8)}, {"feathering", v(6)}});
  NodeOutput all = f.run("ImagePadForOutpaint", {{"image", tensor_value(f.load("scene_32x32.png"))}, {"left", v(4)},
                                                 {"top", v(6)}, {"right", v(2)}, {"bottom", v(3)}, {"feathering", v(9)}});
  for (auto& [out, name] : {std::pair{&one, "pad_outpaint"}, std::pair{&all, "pad_outpaint_all"}}) {
    at::Tensor image = tensor_of(out->result[0], "IMAGE"), mask = tensor_of(out->result[1], "MASK");
    at::Tensor want_image = recorded(std::string(name) + "__image"), want_mask = recorded_mask(std::string(name) + "__mask");
    ASSERT_EQ(image.sizes(), want_image.sizes()) << name;
    EXPECT_EQ(max_abs_diff(image, want_image), 0.0) << name;
    ASSERT_EQ(mask.sizes(), want_mask.sizes()) << name;
    EXPECT_EQ(max_abs_diff(mask, want_mask), 0.0) << name;
  }
}

TEST(EmptyImage, EqualsComfyUI) {
  ImageFolders f;
  at::Tensor out = f.tensor("EmptyImage", {{"width", v(7)}, {"height", v(5)}, {"batch_size", v(2)}, {"color", v(0x12ABEF)}});
  at::Tensor want = recorded("empty_image__image");
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_EQ(max_abs_diff(out, want), 0.0);
}

TEST(EmptyImage, AbsurdSizeIsAnErrorNotACrash) {
  ImageFolders f;
  EXPECT_THROW(f.tensor("EmptyImage", {{"width", v(16384)}, {"height", v(16384)}, {"batch_size", v(4096)}, {"color", v(0)}}),
               ComfyError);
}

TEST(ImageInvert, EqualsComfyUI) {
  ImageFolders f;
  at::Tensor out = f.tensor("ImageInvert", {{"image", tensor_value(f.load("scene_32x32.png"))}});
  EXPECT_EQ(max_abs_diff(out, recorded("invert__image")), 0.0);
}

TEST(ImageBatch, ResizesTheSecondImageLikeComfyUI) {
  ImageFolders f;
  at::Tensor out = f.tensor("ImageBatch", {{"image1", tensor_value(f.load("scene_32x32.png"))},
                                           {"image2", tensor_value(f.load("gen_rgba.webp"))}});
  at::Tensor want = recorded("batch_resize__image");
  ASSERT_EQ(out.sizes(), want.sizes());
  EXPECT_EQ(max_abs_diff(out, want), 0.0);
}

// ---------------------------------------------------------------- SaveImage / PreviewImage

std::map<std::string, std::string> text_chunks(const fs::path& file) {
  std::map<std::string, std::string> out;
  for (auto& c : io::png_chunks(io::read_file(file))) {
    if (c.type != "tEXt") continue;
    auto zero = std::find(c.data.begin(), c.data.end(), 0);
    out[std::string(c.data.begin(), zero)] = std::string(zero + 1, c.data.end());
  }
  return out;
}

TEST(SaveImage, PixelsAndMetadataEqualComfyUI) {
  ImageFolders f;
  json prompts = recorded_prompts();
  fs::path theirs = kImageFixtures / "saved" / "save_image_00001_.png";
  // ComfyUI's PROMPT carries the "is_changed" its executor added to LoadImage: take the prompt as
  // it saw it, so this checks our PNG text (json.dumps, chunk order), not the executor.
  json seen = json::parse(io::read_image(theirs).text.at("prompt"));
  EXPECT_EQ(seen["1"]["is_changed"][0], "153a61e2a4ec4bdb088cd55253c7119bc1b5e38b8a86934f702a48db8ac6f93a");
  at::Tensor padded = f.tensor("ImagePadForOutpaint",
                               {{"image", tensor_value(f.load("scene_64x64_alpha_hole.png"))}, {"left", v(0)},
                                {"top", v(0)}, {"right", v(8)}, {"bottom", v(0)}, {"feathering", v(0)}});
  NodeOutput out = f.run("SaveImage", {{"images", tensor_value(padded)},
                                       {"filename_prefix", v("saved/save_image")},
                                       {"prompt", v(seen)},
                                       {"extra_pnginfo", v(prompts["extra_pnginfo"])}});
  EXPECT_EQ(out.ui, json::parse(R"({"images": [{"filename": "save_image_00001_.png", "subfolder": "saved", "type": "output"}]})"));
  fs::path ours = f.folders.output_directory() / "saved" / "save_image_00001_.png";
  io::DecodedImage a = io::read_image(ours), b = io::read_image(theirs);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.frames.at(0).pixels, b.frames.at(0).pixels);
  auto want = text_chunks(theirs);
  EXPECT_EQ(want.size(), 3u);  // prompt, workflow, other
  EXPECT_EQ(text_chunks(ours), want);

  // The counter continues; a batch takes one number per image.
  out = f.run("SaveImage", {{"images", tensor_value(at::cat({padded, padded}))}, {"filename_prefix", v("saved/save_image")}});
  EXPECT_EQ(out.ui["images"][0]["filename"], "save_image_00002_.png");
  EXPECT_EQ(out.ui["images"][1]["filename"], "save_image_00003_.png");
  EXPECT_TRUE(text_chunks(f.folders.output_directory() / "saved" / "save_image_00003_.png").empty());
}

TEST(SaveImage, DisableMetadataWritesNoTextChunks) {
  ImageFolders f;
  f.services.options.disable_metadata = true;
  f.run("SaveImage", {{"images", tensor_value(f.load("scene_32x32.png"))}, {"filename_prefix", v("ComfyUI")},
                      {"prompt", v(json{{"1", {{"class_type", "X"}}}})}});
  EXPECT_TRUE(text_chunks(f.folders.output_directory() / "ComfyUI_00001_.png").empty());
}

TEST(SaveImage, TruncatesToEightBits) {
  ImageFolders f;
  at::Tensor img = at::tensor({0.0f, 0.999f, 1.5f, -0.2f, 0.5f, 0.00393f}, at::kFloat).reshape({1, 1, 2, 3});
  f.run("SaveImage", {{"images", tensor_value(img)}, {"filename_prefix", v("t")}});
  io::DecodedImage d = io::read_image(f.folders.output_directory() / "t_00001_.png");
  EXPECT_EQ(d.frames[0].pixels, (std::vector<uint8_t>{0, 254, 255, 0, 127, 1}));
}

TEST(SaveImage, UnwritableTargetIsAnErrorAndHarmsNothing) {
  ImageFolders f;
  fs::path out = f.folders.output_directory();
  fs::create_directories(out);
  std::ofstream(out / "blocker") << "keep me";
  at::Tensor img = f.load("scene_32x32.png");
  EXPECT_THROW(f.run("SaveImage", {{"images", tensor_value(img)}, {"filename_prefix", v("blocker/x")}}), ComfyError);
  // The target name is taken by a folder: the write fails, nothing is left behind.
  fs::create_directories(out / "y0_00001_.png");
  EXPECT_THROW(f.run("SaveImage", {{"images", tensor_value(img)}, {"filename_prefix", v("y%batch_num%")}}), ComfyError);
  std::ifstream in(out / "blocker");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "keep me");
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(out)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"blocker", "y0_00001_.png"}));
  EXPECT_THROW(f.run("SaveImage", {{"images", tensor_value(img)}, {"filename_prefix", v("../escape")}}), ComfyError);
}

TEST(PreviewImage, WritesToTempWithARandomStablePrefix) {
  ImageFolders f;
  at::Tensor img = f.load("scene_32x32.png");
  NodeOutput a = f.run("PreviewImage", {{"images", tensor_value(img)}}, "7");
  NodeOutput b = f.run("PreviewImage", {{"images", tensor_value(img)}}, "7");
  std::string name = a.ui["images"][0]["filename"];
  EXPECT_TRUE(std::regex_match(name, std::regex("ComfyUI_temp_[a-z]{5}_00001_\\.png"))) << name;
  EXPECT_EQ(a.ui["images"][0]["type"], "temp");
  EXPECT_EQ(b.ui["images"][0]["filename"], name.substr(0, 18) + "_00002_.png");
  EXPECT_TRUE(fs::exists(f.folders.temp_directory() / name));
}

}  // namespace
}  // namespace comfy::testing
