// comfy_extras/nodes_images.py's nodes against the real ComfyUI's outputs on the same inputs
// (tests/fixtures/images, recorded by tools/oracle/record_images.py).
#include <gtest/gtest.h>

#include "io/image.h"
#include "io/png.h"
#include "io/webp.h"
#include "nodes/image_runner.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;
Value v(json j) { return Value(std::move(j)); }

void expect_equal(const at::Tensor& ours, const std::string& case_tag) {
  at::Tensor want = recorded(case_tag);
  ASSERT_EQ(ours.sizes(), want.sizes()) << case_tag;
  EXPECT_EQ(max_abs_diff(ours, want), 0.0) << case_tag;
}

TEST(ImageCrop, ClampsToTheImageLikeComfyUI) {
  ImageFolders f;
  expect_equal(f.tensor("ImageCrop", {{"image", tensor_value(f.load("scene_64x64.png"))}, {"width", v(20)},
                                      {"height", v(16)}, {"x", v(50)}, {"y", v(7)}}),
               "crop__image");
}

TEST(ImageCrop, OffsetPastTheEdgeKeepsTheLastColumn) {
  ImageFolders f;
  at::Tensor out = f.tensor("ImageCrop", {{"image", tensor_value(f.load("scene_32x32.png"))}, {"width", v(8)},
                                          {"height", v(8)}, {"x", v(100)}, {"y", v(100)}});
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 1, 1, 3}));
}

TEST(RepeatImageBatch, AndImageFromBatchEqualComfyUI) {
  ImageFolders f;
  at::Tensor scene = f.load("scene_32x32.png");
  at::Tensor inverted = f.tensor("ImageInvert", {{"image", tensor_value(scene)}});
  at::Tensor batch = f.tensor("ImageBatch", {{"image1", tensor_value(scene)}, {"image2", tensor_value(inverted)}});
  at::Tensor repeated = f.tensor("RepeatImageBatch", {{"image", tensor_value(batch)}, {"amount", v(3)}});
  expect_equal(repeated, "repeat_from_batch__repeat");
  expect_equal(f.tensor("ImageFromBatch", {{"image", tensor_value(repeated)}, {"batch_index", v(3)}, {"length", v(9)}}),
               "repeat_from_batch__from_batch");
  EXPECT_THROW(f.tensor("RepeatImageBatch", {{"image", tensor_value(at::zeros({1, 512, 512, 3}))}, {"amount", v(4096)}}),
               ComfyError);
}

TEST(ImageFlip, EqualsComfyUI) {
  ImageFolders f;
  at::Tensor scene = f.load("scene_32x32.png");
  expect_equal(f.tensor("ImageFlip", {{"image", tensor_value(scene)}, {"flip_method", v("x-axis: vertically")}}),
               "flip_x__image");
  expect_equal(f.tensor("ImageFlip", {{"image", tensor_value(scene)}, {"flip_method", v("y-axis: horizontally")}}),
               "flip_y__image");
}

TEST(ImageRotate, EqualsComfyUI) {
  ImageFolders f;
  at::Tensor img = f.load("gen_plain.jpg");
  for (const char* r : {"90", "180", "270"})
    expect_equal(f.tensor("ImageRotate", {{"image", tensor_value(img)}, {"rotation", v(std::string(r) + " degrees")}}),
                 std::string("rotate_") + r + "__image");
  EXPECT_EQ(max_abs_diff(f.tensor("ImageRotate", {{"image", tensor_value(img)}, {"rotation", v("none")}}), img), 0.0);
}

TEST(ImageStitch, EqualsComfyUI) {
  ImageFolders f;
  at::Tensor a = f.load("scene_32x32.png"), b = f.load("gen_rgba.webp");
  struct Case {
    const char* direction;
    bool match;
    int spacing;
    const char* color;
  };
  for (Case c : {Case{"right", true, 4, "red"}, Case{"down", true, 0, "white"}, Case{"left", false, 6, "white"},
                 Case{"up", false, 2, "blue"}}) {
    at::Tensor out = f.tensor("ImageStitch", {{"image1", tensor_value(a)}, {"image2", tensor_value(b)},
                                              {"direction", v(c.direction)}, {"match_image_size", v(c.match)},
                                              {"spacing_width", v(c.spacing)}, {"spacing_color", v(c.color)}});
    expect_equal(out, std::string("stitch_") + c.direction + (c.match ? "_match_" : "_pad_") + std::to_string(c.spacing) +
                          "_" + c.color + "__image");
  }
  EXPECT_EQ(max_abs_diff(f.tensor("ImageStitch", {{"image1", tensor_value(a)}, {"direction", v("right")},
                                                  {"match_image_size", v(true)}, {"spacing_width", v(0)},
                                                  {"spacing_color", v("white")}}),
                         a),
            0.0);
}

// ---------------------------------------------------------------- animated savers

at::Tensor scene_and_inverse(const ImageFolders& f) {
  at::Tensor scene = f.load("scene_32x32.png");
  return at::cat({scene, 1.0 - scene});
}

struct ApngFrame {
  std::vector<uint8_t> fctl;
  io::DecodedImage image;
};

// Each frame of an APNG as a PNG of its own (IHDR sized from fcTL, IDAT from IDAT/fdAT data).
std::vector<ApngFrame> apng_frames(const std::vector<uint8_t>& file) {
  auto chunks = io::png_chunks(file);
  std::vector<uint8_t> ihdr;
  std::vector<ApngFrame> frames;
  std::vector<std::vector<uint8_t>> data;
  for (auto& c : chunks) {
    if (c.type == "IHDR") ihdr = c.data;
    if (c.type == "fcTL") {
      frames.push_back({c.data, {}});
      data.emplace_back();
    }
    if (c.type == "IDAT" && !data.empty()) data.back().insert(data.back().end(), c.data.begin(), c.data.end());
    if (c.type == "fdAT") data.back().insert(data.back().end(), c.data.begin() + 4, c.data.end());
  }
  for (size_t i = 0; i < frames.size(); ++i) {
    std::vector<uint8_t> h = ihdr;
    std::copy(frames[i].fctl.begin() + 4, frames[i].fctl.begin() + 12, h.begin());
    // Re-wrap with a tiny writer: length, type, data, crc (crc recomputed through libpng-free zlib).
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    auto put = [&](const char* type, const std::vector<uint8_t>& d) {
      std::vector<uint8_t> body(type, type + 4);
      body.insert(body.end(), d.begin(), d.end());
      uint32_t n = static_cast<uint32_t>(d.size());
      for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(n >> s));
      png.insert(png.end(), body.begin(), body.end());
      uint32_t crc = 0xffffffffu;
      for (uint8_t byte : body) {
        crc ^= byte;
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
      }
      crc ^= 0xffffffffu;
      for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(crc >> s));
    };
    put("IHDR", h);
    put("IDAT", data[i]);
    put("IEND", {});
    frames[i].image = io::decode_png(png, "frame");
  }
  return frames;
}

std::vector<io::RawChunk> chunks_of_type(const std::vector<uint8_t>& file, const std::string& type) {
  std::vector<io::RawChunk> out;
  for (auto& c : io::png_chunks(file))
    if (c.type == type) out.push_back(c);
  return out;
}

// The PROMPT as ComfyUI's saver saw it (its executor adds "is_changed" to LoadImage), read back
// from the recorded file, so the comparison checks our metadata writing, not the executor.
json seen_prompt(const std::string& text, char separator) {
  return json::parse(text.substr(text.find(separator) + 1));
}

TEST(SaveAnimatedPNG, FramesTimingAndMetadataEqualComfyUI) {
  ImageFolders f;
  json prompts = recorded_prompts();
  auto theirs = io::read_file(kImageFixtures / "saved" / "save_apng_00001_.png");
  auto comf = chunks_of_type(theirs, "comf");
  ASSERT_FALSE(comf.empty());
  json seen = seen_prompt(std::string(comf[0].data.begin(), comf[0].data.end()), '\0');
  NodeOutput out = f.run("SaveAnimatedPNG", {{"images", tensor_value(scene_and_inverse(f))},
                                             {"filename_prefix", v("saved/save_apng")}, {"fps", v(7.0)},
                                             {"compress_level", v(4)}, {"prompt", v(seen)},
                                             {"extra_pnginfo", v(prompts["extra_pnginfo"])}});
  EXPECT_EQ(out.ui, json::parse(R"({"images": [{"filename": "save_apng_00001_.png", "subfolder": "saved", "type": "output"}],
                                   "animated": [true]})"));
  auto ours = io::read_file(f.folders.output_directory() / "saved" / "save_apng_00001_.png");
  EXPECT_EQ(chunks_of_type(ours, "acTL")[0].data, chunks_of_type(theirs, "acTL")[0].data);
  auto a = apng_frames(ours), b = apng_frames(theirs);
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    // sequence numbers differ with chunk layout; size, offset, delay, dispose and blend must not
    EXPECT_EQ(std::vector<uint8_t>(a[i].fctl.begin() + 4, a[i].fctl.end()),
              std::vector<uint8_t>(b[i].fctl.begin() + 4, b[i].fctl.end()));
    EXPECT_EQ(a[i].image.frames[0].pixels, b[i].image.frames[0].pixels) << "frame " << i;
  }
  auto ca = chunks_of_type(ours, "comf"), cb = chunks_of_type(theirs, "comf");
  ASSERT_EQ(ca.size(), 3u);
  ASSERT_EQ(cb.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ca[i].data, cb[i].data);
}

TEST(SaveAnimatedWEBP, LosslessFramesAndExifEqualComfyUI) {
  ImageFolders f;
  json prompts = recorded_prompts();
  auto theirs = io::read_file(kImageFixtures / "saved" / "save_webp_00001_.webp");
  json seen;
  for (auto& [tag, text] : io::exif_ascii_entries(io::webp_exif(theirs)))
    if (tag == 0x0110) seen = seen_prompt(text, ':');
  ASSERT_FALSE(seen.is_null());
  NodeOutput out = f.run("SaveAnimatedWEBP", {{"images", tensor_value(scene_and_inverse(f))},
                                              {"filename_prefix", v("saved/save_webp")}, {"fps", v(7.0)},
                                              {"lossless", v(true)}, {"quality", v(80)}, {"method", v("default")},
                                              {"prompt", v(seen)},
                                              {"extra_pnginfo", v(prompts["extra_pnginfo"])}});
  EXPECT_EQ(out.ui["images"][0]["filename"], "save_webp_00001_.webp");
  EXPECT_EQ(out.ui["animated"], json::array({true}));
  auto ours = io::read_file(f.folders.output_directory() / "saved" / "save_webp_00001_.webp");
  io::DecodedImage a = io::decode_webp(ours, "ours"), b = io::decode_webp(theirs, "theirs");
  EXPECT_EQ(a.mode, b.mode);
  ASSERT_EQ(a.frames.size(), b.frames.size());
  for (size_t i = 0; i < a.frames.size(); ++i) EXPECT_EQ(a.frames[i].pixels, b.frames[i].pixels) << "frame " << i;
  auto ea = io::exif_ascii_entries(io::webp_exif(ours)), eb = io::exif_ascii_entries(io::webp_exif(theirs));
  EXPECT_EQ(ea.size(), 3u);
  EXPECT_EQ(ea, eb);
  EXPECT_EQ(io::webp_exif(ours), io::webp_exif(theirs));  // the whole EXIF block, byte for byte
}

TEST(SaveAnimatedWEBP, OneFrameIsNotAnimated) {
  ImageFolders f;
  NodeOutput out = f.run("SaveAnimatedWEBP", {{"images", tensor_value(f.load("scene_32x32.png"))},
                                              {"filename_prefix", v("one")}, {"fps", v(6.0)}, {"lossless", v(false)},
                                              {"quality", v(50)}, {"method", v("fastest")}});
  EXPECT_FALSE(out.ui.contains("animated"));
  io::DecodedImage d = io::read_image(f.folders.output_directory() / "one_00001_.webp");
  EXPECT_EQ(d.frames.size(), 1u);
}

}  // namespace
}  // namespace comfy::testing
