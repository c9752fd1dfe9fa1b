#include "io/apng.h"

#include <zlib.h>

#include <algorithm>

#include "core/error.h"
#include "io/png.h"

namespace comfy::io {
namespace {

uint32_t u32(const std::vector<uint8_t>& d, size_t at) {
  return (uint32_t(d[at]) << 24) | (uint32_t(d[at + 1]) << 16) | (uint32_t(d[at + 2]) << 8) | d[at + 3];
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void put_chunk(std::vector<uint8_t>& out, const std::string& type, const std::vector<uint8_t>& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  size_t start = out.size();
  out.insert(out.end(), type.begin(), type.end());
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, out.data() + start, static_cast<uInt>(out.size() - start));
  put_u32(out, static_cast<uint32_t>(crc));
}

struct FrameControl {
  uint32_t width = 0, height = 0, x = 0, y = 0;
  uint8_t dispose = 0, blend = 0;
  std::vector<uint8_t> data;  // zlib stream (IDAT or fdAT payloads without sequence numbers)
  bool is_default = false;    // the IDAT image
};

enum : uint8_t { kDisposeNone = 0, kDisposeBackground = 1, kDisposePrevious = 2 };
enum : uint8_t { kBlendSource = 0, kBlendOver = 1 };

// Pillow's DIV255 rounding of a blend.
uint8_t blend(uint8_t dst, uint8_t src, uint8_t alpha) {
  uint32_t t = uint32_t(dst) * (255 - alpha) + uint32_t(src) * alpha + 128;
  return static_cast<uint8_t>(((t >> 8) + t) >> 8);
}

}  // namespace

void read_apng_frames(const std::vector<uint8_t>& bytes, DecodedImage& img, const std::string& what) {
  std::vector<RawChunk> chunks = png_chunks(bytes);
  bool animated = false;
  for (auto& c : chunks) animated = animated || c.type == "acTL";
  if (!animated || img.mode == "I" || img.frames.size() != 1) return;
  auto broken = [&](const std::string& why) { return ComfyError("OSError", "cannot read image file '" + what + "': " + why); };

  std::vector<uint8_t> ihdr;
  std::vector<RawChunk> palette;  // PLTE / tRNS, needed to decode each frame alone
  std::vector<FrameControl> frames;
  bool seen_idat = false;
  for (auto& c : chunks) {
    if (c.type == "IHDR") {
      ihdr = c.data;
    } else if (c.type == "PLTE" || c.type == "tRNS") {
      palette.push_back(c);
    } else if (c.type == "fcTL") {
      if (c.data.size() < 26) throw broken("APNG frame control chunk is too short");
      FrameControl f;
      f.width = u32(c.data, 4);
      f.height = u32(c.data, 8);
      f.x = u32(c.data, 12);
      f.y = u32(c.data, 16);
      f.dispose = c.data[24];
      f.blend = c.data[25];
      f.is_default = !seen_idat;
      frames.push_back(std::move(f));
    } else if (c.type == "IDAT") {
      seen_idat = true;
    } else if (c.type == "fdAT") {
      if (frames.empty() || frames.back().is_default || c.data.size() < 4) throw broken("APNG frame data without a frame");
      frames.back().data.insert(frames.back().data.end(), c.data.begin() + 4, c.data.end());
    }
  }
  if (ihdr.size() < 13) throw broken("no IHDR chunk");

  const Frame& first = img.frames[0];
  const int W = first.width, H = first.height, C = img.channels;
  std::vector<uint8_t> canvas = first.pixels;
  // The dispose op of the frame just drawn: the region and what to put back there.
  uint8_t dispose_op = kDisposeNone;
  FrameControl dispose_region;
  std::vector<uint8_t> before;  // the canvas before the last frame (for "previous")
  if (!frames.empty() && frames[0].is_default) {
    dispose_op = frames[0].dispose == kDisposePrevious ? kDisposeBackground : frames[0].dispose;
    dispose_region = frames[0];
    before.assign(canvas.size(), 0);
  }

  for (auto& f : frames) {
    if (f.is_default) continue;
    if (f.width == 0 || f.height == 0 || uint64_t(f.x) + f.width > uint64_t(W) || uint64_t(f.y) + f.height > uint64_t(H))
      throw broken("APNG frame outside the image");
    // What the previous frame's dispose op leaves.
    if (dispose_op != kDisposeNone) {
      for (uint32_t yy = 0; yy < dispose_region.height; ++yy) {
        size_t at = ((size_t(dispose_region.y) + yy) * W + dispose_region.x) * C;
        size_t n = size_t(dispose_region.width) * C;
        if (dispose_op == kDisposeBackground) std::fill_n(canvas.begin() + static_cast<long>(at), n, 0);
        else std::copy_n(before.begin() + static_cast<long>(at), n, canvas.begin() + static_cast<long>(at));
      }
    }
    before = canvas;
    // The frame's region, decoded as a PNG of its own.
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<uint8_t> header = ihdr;
    for (int i = 0; i < 4; ++i) {
      header[i] = static_cast<uint8_t>(f.width >> (24 - 8 * i));
      header[4 + i] = static_cast<uint8_t>(f.height >> (24 - 8 * i));
    }
    put_chunk(png, "IHDR", header);
    for (auto& p : palette) put_chunk(png, p.type, p.data);
    put_chunk(png, "IDAT", f.data);
    put_chunk(png, "IEND", {});
    DecodedImage part = decode_png(png, what);
    if (part.channels != C || part.frames.size() != 1) throw broken("APNG frame of another pixel format");
    const std::vector<uint8_t>& px = part.frames[0].pixels;
    bool has_alpha = C == 2 || C == 4;
    for (uint32_t yy = 0; yy < f.height; ++yy) {
      for (uint32_t xx = 0; xx < f.width; ++xx) {
        uint8_t* dst = &canvas[((size_t(f.y) + yy) * W + f.x + xx) * C];
        const uint8_t* src = &px[(size_t(yy) * f.width + xx) * C];
        if (f.blend == kBlendOver && has_alpha) {
          uint8_t a = src[C - 1];
          for (int c = 0; c < C; ++c) dst[c] = blend(dst[c], src[c], a);
        } else {
          std::copy_n(src, C, dst);
        }
      }
    }
    Frame out;
    out.width = W;
    out.height = H;
    out.pixels = canvas;
    img.frames.push_back(std::move(out));
    dispose_op = f.dispose;
    dispose_region = f;
  }
}

}  // namespace comfy::io
