// PNG reading and writing: round trips in every 8-bit layout, the text chunks ComfyUI stores its
// prompt in, APNG structure, and hostile bytes (every truncation of a valid file).
#include "io/png.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace comfy::io {
namespace {

const std::filesystem::path kInputs = std::filesystem::path(COMFY_TEST_DATA) / "images" / "inputs";

std::vector<uint8_t> ramp(int w, int h, int c) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * c);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 37 + 11);
  return px;
}

TEST(Png, RoundTripsEveryChannelCount) {
  const char* modes[] = {"", "L", "LA", "RGB", "RGBA"};
  for (int c = 1; c <= 4; ++c) {
    auto px = ramp(5, 3, c);
    DecodedImage d = decode_png(encode_png(px.data(), 5, 3, c, 4), "t");
    EXPECT_EQ(d.mode, modes[c]);
    EXPECT_EQ(d.channels, c);
    ASSERT_EQ(d.frames.size(), 1u);
    EXPECT_EQ(d.frames[0].pixels, px);
  }
}

TEST(Png, TextChunksAreUncompressedAndBeforeTheImageData) {
  auto px = ramp(2, 2, 3);
  auto bytes = encode_png(px.data(), 2, 2, 3, 1, {{"prompt", "{\"1\": {}}"}, {"workflow", "{\"a\": \"\\u00e9\"}"}});
  auto chunks = png_chunks(bytes);
  std::vector<std::string> types;
  for (auto& c : chunks) types.push_back(c.type);
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "tEXt", "tEXt", "IDAT", "IEND"}));
  std::string first(chunks[1].data.begin(), chunks[1].data.end());
  EXPECT_EQ(first, std::string("prompt\0{\"1\": {}}", 16));
  DecodedImage d = decode_png(bytes, "t");
  EXPECT_EQ(d.text.at("workflow"), "{\"a\": \"\\u00e9\"}");
}

TEST(Png, SixteenBitGreyKeepsItsSamples) {
  DecodedImage d = decode_png(read_file(kInputs / "gen_grey16.png"), "g");
  EXPECT_EQ(d.mode, "I");
  ASSERT_EQ(d.frames[0].wide.size(), 20u * 12u);
  EXPECT_EQ(std::vector<int32_t>(d.frames[0].wide.begin(), d.frames[0].wide.begin() + 6),
            (std::vector<int32_t>{0, 254, 255, 256, 65535, 510}));
}

TEST(Png, PaletteTransparencyBecomesAlpha) {
  DecodedImage d = decode_png(read_file(kInputs / "gen_palette_trns.png"), "p");
  EXPECT_EQ(d.mode, "P");
  EXPECT_TRUE(d.palette_transparency);
  EXPECT_EQ(d.channels, 4);
  DecodedImage e = decode_png(read_file(kInputs / "gen_palette.png"), "p");
  EXPECT_FALSE(e.palette_transparency);
  EXPECT_EQ(e.channels, 3);
}

TEST(Png, ExifOrientationIsRead) {
  EXPECT_EQ(decode_png(read_file(kInputs / "gen_exif3.png"), "e").exif_orientation, 3);
}

TEST(Png, ApngHasOneControlChunkPerFrameAndChunksAfterTheData) {
  auto a = ramp(3, 2, 3), b = ramp(3, 2, 3);
  b[0] ^= 0xff;
  auto bytes = encode_apng({a.data(), b.data()}, 3, 2, 3, 142, 4, {{"comf", {'k', 0, 'v'}}});
  std::vector<std::string> types;
  for (auto& c : png_chunks(bytes)) types.push_back(c.type);
  EXPECT_EQ(types, (std::vector<std::string>{"IHDR", "acTL", "fcTL", "IDAT", "fcTL", "fdAT", "comf", "IEND"}));
  auto chunks = png_chunks(bytes);
  EXPECT_EQ(chunks[1].data, (std::vector<uint8_t>{0, 0, 0, 2, 0, 0, 0, 0}));
  // delay 142/1000, dispose none, blend source
  EXPECT_EQ(std::vector<uint8_t>(chunks[4].data.begin() + 20, chunks[4].data.end()),
            (std::vector<uint8_t>{0, 142, 3, 232, 0, 0}));
  // The default image is the first frame.
  EXPECT_EQ(decode_png(bytes, "a").frames[0].pixels, a);
}

TEST(Png, EveryTruncationIsAnErrorNotACrash) {
  auto px = ramp(9, 7, 4);
  auto bytes = encode_png(px.data(), 9, 7, 4, 9, {{"k", "v"}});
  for (size_t n = 0; n < bytes.size() - 12; ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    EXPECT_THROW(decode_png(cut, "cut"), ComfyError) << n;
  }
}

TEST(Png, FlippedBitsNeverCrash) {
  auto px = ramp(9, 7, 3);
  auto bytes = encode_png(px.data(), 9, 7, 3, 6);
  for (size_t i = 8; i < bytes.size(); ++i) {
    auto bad = bytes;
    bad[i] ^= 0x5a;
    try {
      decode_png(bad, "bad");
    } catch (const ComfyError&) {
    }
  }
}

TEST(Png, RefusesAbsurdSizes) {
  uint8_t px[3] = {1, 2, 3};
  EXPECT_THROW(encode_png(px, 0, 1, 3, 4), ComfyError);
  EXPECT_THROW(encode_png(px, 1, 1, 5, 4), ComfyError);
}

}  // namespace
}  // namespace comfy::io
