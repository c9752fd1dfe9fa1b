// WebP: animated lossless round trips, and the EXIF block SaveAnimatedWEBP stores its metadata in.
#include "io/webp.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace comfy::io {
namespace {

TEST(Webp, LosslessAnimationRoundTrips) {
  std::vector<uint8_t> a(6 * 4 * 3), b(6 * 4 * 3);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<uint8_t>(i * 13);
    b[i] = static_cast<uint8_t>(255 - i * 7);
  }
  WebpAnimOptions o;
  o.exif = exif_ascii_block({{0x0110, "prompt:{\"1\": 2}"}, {0x010F, "workflow:{}"}});
  auto bytes = encode_animated_webp({a.data(), b.data()}, 6, 4, 3, o);
  DecodedImage d = decode_webp(bytes, "w");
  EXPECT_EQ(d.mode, "RGB");
  ASSERT_EQ(d.frames.size(), 2u);
  EXPECT_EQ(d.frames[0].pixels, a);
  EXPECT_EQ(d.frames[1].pixels, b);
  auto entries = exif_ascii_entries(webp_exif(bytes));
  EXPECT_EQ(entries, (std::vector<std::pair<uint16_t, std::string>>{{0x010F, "workflow:{}"},
                                                                    {0x0110, "prompt:{\"1\": 2}"}}));
}

TEST(Webp, ExifBlockIsBigEndianTiffAsPillowWritesIt) {
  auto block = exif_ascii_block({{0x0110, "ab"}});
  // Exif\0\0, MM\0*, IFD at 8, one entry: tag 0x0110, ASCII, count 3, value inline, no next IFD
  EXPECT_EQ(block, (std::vector<uint8_t>{'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x10, 0, 2,
                                         0, 0, 0, 3, 'a', 'b', 0, 0, 0, 0, 0, 0}));
  std::vector<uint8_t> le = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x10, 0x01, 2, 0, 3, 0, 0, 0, 'a', 'b', 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(exif_ascii_entries(le), (std::vector<std::pair<uint16_t, std::string>>{{0x0110, "ab"}}));
}

TEST(Webp, GarbageIsAnError) {
  std::vector<uint8_t> junk = {'R', 'I', 'F', 'F', 1, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '};
  EXPECT_THROW(decode_webp(junk, "junk"), ComfyError);
  EXPECT_THROW(encode_animated_webp({}, 1, 1, 3, {}), ComfyError);
  uint8_t px[3] = {0, 0, 0};
  EXPECT_THROW(encode_animated_webp({px}, 20000, 1, 3, {}), ComfyError);
}

}  // namespace
}  // namespace comfy::io
