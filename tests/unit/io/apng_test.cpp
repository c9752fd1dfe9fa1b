// Animated PNG frames as Pillow composites them (dispose and blend ops), hand-built files with
// expectations worked out by hand.
#include <gtest/gtest.h>
#include <zlib.h>

#include "core/error.h"
#include "io/png.h"

namespace comfy::io {
namespace {

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32(out, static_cast<uint32_t>(crc32(0, out.data() + start, static_cast<uInt>(out.size() - start))));
}

std::vector<uint8_t> deflate_rgba(const std::vector<uint8_t>& px, uint32_t w, uint32_t h) {
  std::vector<uint8_t> raw;
  for (uint32_t y = 0; y < h; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), px.begin() + y * w * 4, px.begin() + (y + 1) * w * 4);
  }
  uLongf n = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> out(n);
  compress2(out.data(), &n, raw.data(), static_cast<uLong>(raw.size()), 6);
  out.resize(n);
  return out;
}

std::vector<uint8_t> fctl(uint32_t seq, uint32_t w, uint32_t h, uint32_t x, uint32_t y, uint8_t dispose, uint8_t blend) {
  std::vector<uint8_t> d;
  for (uint32_t v : {seq, w, h, x, y}) put_u32(d, v);
  d.insert(d.end(), {0, 1, 0, 10, dispose, blend});
  return d;
}

struct Part {
  uint32_t w, h, x, y;
  uint8_t dispose, blend;
  std::vector<uint8_t> rgba;
};

// A 2x2 RGBA APNG whose first part is the default image.
std::vector<uint8_t> apng(const std::vector<Part>& parts) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32(ihdr, 2);
  put_u32(ihdr, 2);
  ihdr.insert(ihdr.end(), {8, 6, 0, 0, 0});
  chunk(out, "IHDR", ihdr);
  std::vector<uint8_t> actl;
  put_u32(actl, static_cast<uint32_t>(parts.size()));
  put_u32(actl, 0);
  chunk(out, "acTL", actl);
  uint32_t seq = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& p = parts[i];
    chunk(out, "fcTL", fctl(seq++, p.w, p.h, p.x, p.y, p.dispose, p.blend));
    std::vector<uint8_t> data = deflate_rgba(p.rgba, p.w, p.h);
    if (i == 0) {
      chunk(out, "IDAT", data);
    } else {
      std::vector<uint8_t> fd;
      put_u32(fd, seq++);
      fd.insert(fd.end(), data.begin(), data.end());
      chunk(out, "fdAT", fd);
    }
  }
  chunk(out, "IEND", {});
  return out;
}

using Px = std::vector<uint8_t>;
Px cat(std::initializer_list<Px> ps) {
  Px out;
  for (auto& p : ps) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(Apng, FramesAreCompositedWithDisposeAndBlendOps) {
  Px A = {10, 20, 30, 255}, R = {200, 0, 0, 255}, clear = {0, 0, 255, 0}, P = {1, 2, 3, 4}, Q = {5, 6, 7, 8},
     Z = {0, 0, 0, 0};
  auto bytes = apng({{2, 2, 0, 0, 0, 0, cat({A, A, A, A})},
                     {1, 1, 1, 1, 1, 0, R},        // source at (1,1), then cleared (background)
                     {1, 1, 0, 0, 2, 1, clear},    // over with alpha 0: nothing changes; then "previous"
                     {2, 1, 0, 1, 0, 0, cat({P, Q})}});
  DecodedImage img = decode_png(bytes, "anim.png");
  ASSERT_EQ(img.frames.size(), 4u);
  EXPECT_EQ(img.mode, "RGBA");
  EXPECT_EQ(img.frames[0].pixels, cat({A, A, A, A}));
  EXPECT_EQ(img.frames[1].pixels, cat({A, A, A, R}));
  EXPECT_EQ(img.frames[2].pixels, cat({A, A, A, Z}));
  EXPECT_EQ(img.frames[3].pixels, cat({A, A, P, Q}));
}

TEST(Apng, OverBlendsThroughTheFramesAlpha) {
  Px A = {100, 100, 100, 255}, half = {200, 0, 0, 128};
  auto bytes = apng({{2, 2, 0, 0, 0, 0, cat({A, A, A, A})}, {1, 1, 0, 0, 0, 1, half}});
  DecodedImage img = decode_png(bytes, "anim.png");
  ASSERT_EQ(img.frames.size(), 2u);
  // Image.paste with the frame's alpha as mask: dst*(255-a)/255 + src*a/255, rounded.
  // red: (100*127 + 200*128)/255 = 149.8 -> 150; green/blue: 100*127/255 = 49.8 -> 50;
  // alpha: (255*127 + 128*128)/255 = 191.25 -> 191.
  EXPECT_EQ(Px(img.frames[1].pixels.begin(), img.frames[1].pixels.begin() + 4), (Px{150, 50, 50, 191}));
  EXPECT_EQ(Px(img.frames[1].pixels.begin() + 4, img.frames[1].pixels.end()), cat({A, A, A}));
}

TEST(Apng, FrameOutsideTheCanvasIsAnError) {
  Px A = {1, 1, 1, 255};
  auto bytes = apng({{2, 2, 0, 0, 0, 0, cat({A, A, A, A})}, {2, 2, 1, 1, 0, 0, cat({A, A, A, A})}});
  EXPECT_THROW(decode_png(bytes, "bad.png"), ComfyError);
}

TEST(Apng, EncodedAnimationDecodesEveryFrame) {
  std::vector<uint8_t> a(2 * 2 * 3, 10), b(2 * 2 * 3, 250);
  auto bytes = encode_apng({a.data(), b.data(), a.data()}, 2, 2, 3, 100, 4);
  DecodedImage img = decode_png(bytes, "enc.png");
  ASSERT_EQ(img.frames.size(), 3u);
  EXPECT_EQ(img.frames[1].pixels, b);
  EXPECT_EQ(img.frames[2].pixels, a);
}

}  // namespace
}  // namespace comfy::io
