// Pillow 9.4's colour quantization as ImageQuantize uses it (our own implementation of the same
// algorithms, so its outputs match ComfyUI's pixel for pixel):
//   median_cut_palette  Image.quantize(colors): Heckbert median cut over the image's colours
//                       (boxes split along the widest luminance-weighted axis, the most populous
//                       box first), each palette entry the rounded mean of its box's pixels,
//                       padded with black to the 256 entries Pillow 9.4's palette image holds;
//   to_palette          Image.quantize(palette=..., dither=NONE or FLOYDSTEINBERG): each pixel to
//                       the palette entry nearest its 4-level colour cell (Pillow's colour cache),
//                       optionally with Pillow's own Floyd-Steinberg error diffusion;
//   bayer               ComfyUI's ordered dither: a Bayer threshold map added, then to_palette.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace comfy::quantize {

struct Rgb8 {  // an 8-bit RGB image, rows top to bottom, RGBRGB...
  int64_t width = 0, height = 0;
  std::vector<uint8_t> data;
  Rgb8(int64_t w, int64_t h, const uint8_t* pixels = nullptr);
  const uint8_t* at(int64_t x, int64_t y) const { return &data[(y * width + x) * 3]; }
  uint8_t* at(int64_t x, int64_t y) { return &data[(y * width + x) * 3]; }
};

using Palette = std::vector<std::array<uint8_t, 3>>;

Palette median_cut_palette(const Rgb8& image, int colors);
Rgb8 to_palette(const Rgb8& image, const Palette& palette, bool floyd_steinberg);
Rgb8 bayer(const Rgb8& image, const Palette& palette, int order);

}  // namespace comfy::quantize
