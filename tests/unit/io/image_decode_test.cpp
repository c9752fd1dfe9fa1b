// Picking a decoder by signature, JPEG decoding, EXIF orientation, and atomic writes.
#include "io/image.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"

namespace comfy::io {
namespace {

const std::filesystem::path kInputs = std::filesystem::path(COMFY_TEST_DATA) / "images" / "inputs";

TEST(ImageDecode, PicksTheDecoderBySignature) {
  EXPECT_EQ(read_image(kInputs / "scene_32x32.png").format, "PNG");
  EXPECT_EQ(read_image(kInputs / "gen_plain.jpg").format, "JPEG");
  EXPECT_EQ(read_image(kInputs / "gen_grey.jpg").mode, "L");
  EXPECT_EQ(read_image(kInputs / "gen_rgba.webp").mode, "RGBA");
  EXPECT_EQ(read_image(kInputs / "gen_anim.webp").frames.size(), 3u);
  try {
    read_image(kInputs / "gen_not_an_image.png");
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "UnidentifiedImageError");
  }
  EXPECT_THROW(read_image(kInputs / "nope.png"), ComfyError);
}

TEST(ImageDecode, JpegTruncationsAreErrorsNotCrashes) {
  auto bytes = read_file(kInputs / "gen_plain.jpg");
  for (size_t n = 0; n < bytes.size(); n += 7) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    try {
      decode_image(cut, "cut");
    } catch (const ComfyError&) {
    }
  }
}

TEST(ImageDecode, ExifOrientation) {
  EXPECT_EQ(read_image(kInputs / "gen_exif6.jpg").exif_orientation, 6);
  EXPECT_EQ(read_image(kInputs / "gen_plain.jpg").exif_orientation, 1);
  // big-endian TIFF, orientation 8
  std::vector<uint8_t> mm = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(exif_orientation(mm.data(), mm.size()), 8);
  EXPECT_EQ(exif_orientation(mm.data(), 12), 1);  // truncated: as stored
}

TEST(ImageDecode, OrientationTransforms) {
  Frame f{3, 2, {1, 2, 3, 4, 5, 6}, {}};  // rows: 1 2 3 / 4 5 6
  auto o = [&](int k) { return apply_orientation(f, 1, k).pixels; };
  EXPECT_EQ(o(1), (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(o(2), (std::vector<uint8_t>{3, 2, 1, 6, 5, 4}));
  EXPECT_EQ(o(3), (std::vector<uint8_t>{6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(o(4), (std::vector<uint8_t>{4, 5, 6, 1, 2, 3}));
  EXPECT_EQ(o(5), (std::vector<uint8_t>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(o(6), (std::vector<uint8_t>{4, 1, 5, 2, 6, 3}));  // 90 degrees clockwise
  EXPECT_EQ(o(7), (std::vector<uint8_t>{6, 3, 5, 2, 4, 1}));
  EXPECT_EQ(o(8), (std::vector<uint8_t>{3, 6, 2, 5, 1, 4}));  // 90 degrees counter-clockwise
  EXPECT_EQ(apply_orientation(f, 1, 6).width, 2);
}

TEST(ImageDecode, AtomicWriteReplacesOrFailsCleanly) {
  auto dir = std::filesystem::temp_directory_path() / ("comfy-io-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "taken");
  write_file_atomic(dir / "a.bin", {1, 2, 3});
  EXPECT_EQ(read_file(dir / "a.bin"), (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_THROW(write_file_atomic(dir / "taken", {4}), ComfyError);
  EXPECT_THROW(write_file_atomic(dir / "missing" / "b.bin", {4}), ComfyError);
  size_t entries = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++entries;
  EXPECT_EQ(entries, 2u);  // a.bin and taken/, no temporary left behind
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace comfy::io
