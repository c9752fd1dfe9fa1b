// PNG through libpng: decoding into a DecodedImage (every bit depth and colour type, with the
// text chunks ComfyUI stores its prompt and workflow in), encoding one image with tEXt chunks, and
// encoding an animated PNG (acTL/fcTL/fdAT written by hand: Debian's libpng has no APNG API).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/image.h"

namespace comfy::io {

using TextChunks = std::vector<std::pair<std::string, std::string>>;  // keyword, Latin-1 text

bool is_png(const std::vector<uint8_t>& bytes);
// Modes as Pillow 9 names them: grey "L" (1/2/4-bit scaled up, 16-bit as "I"), "LA", "RGB",
// "RGBA" (16-bit colour samples keep their high byte, as Pillow does), palette "P" expanded to RGB,
// or to RGBA with palette_transparency when a tRNS chunk is present. Throws ComfyError("OSError").
DecodedImage decode_png(const std::vector<uint8_t>& bytes, const std::string& what);

// One 8-bit image (channels 1..4) with the text chunks as uncompressed tEXt before the image data.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels, int compress_level,
                                const TextChunks& text = {});

// An animated PNG that loops forever: every frame full-size, shown for `duration_ms`
// (disposal none, blend source, as Pillow writes by default). `after_idat` chunks (type, data)
// follow the image data, as SaveAnimatedPNG's private "comf" chunks do.
struct RawChunk {
  std::string type;  // four letters
  std::vector<uint8_t> data;
};
std::vector<uint8_t> encode_apng(const std::vector<const uint8_t*>& frames, int width, int height, int channels,
                                 int duration_ms, int compress_level, const std::vector<RawChunk>& after_idat = {});

// The chunks of a PNG file in order (type and data), for tests and metadata readers.
std::vector<RawChunk> png_chunks(const std::vector<uint8_t>& bytes);

}  // namespace comfy::io
