// WebP through libwebp: decoding (still and animated, every frame composited, as Pillow's
// WebPAnimDecoder path gives them) and the animated encoder SaveAnimatedWEBP uses.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/image.h"

namespace comfy::io {

bool is_webp(const std::vector<uint8_t>& bytes);
// Mode "RGBA" when the file has alpha, else "RGB"; the EXIF chunk's orientation is read.
DecodedImage decode_webp(const std::vector<uint8_t>& bytes, const std::string& what);

struct WebpAnimOptions {
  int duration_ms = 166;  // per frame
  bool lossless = true;
  int quality = 80;       // 0..100
  int method = 4;         // 0 (fastest) .. 6 (slowest)
  std::vector<uint8_t> exif;  // TIFF-structured EXIF block to store, or empty
};
// An animated WebP (loop forever) of 8-bit RGB or RGBA frames of one size.
std::vector<uint8_t> encode_animated_webp(const std::vector<const uint8_t*>& frames, int width, int height,
                                          int channels, const WebpAnimOptions& options);

// An EXIF block with ASCII entries in IFD0 (tag -> text) as Pillow 9 writes one into WebP files:
// "Exif\0\0", then a big-endian TIFF (Exif.tobytes()).
std::vector<uint8_t> exif_ascii_block(const std::vector<std::pair<uint16_t, std::string>>& entries);
// The ASCII entries of IFD0 of an EXIF block (either byte order, "Exif\0\0" prefix optional).
std::vector<std::pair<uint16_t, std::string>> exif_ascii_entries(const std::vector<uint8_t>& tiff);
// The EXIF chunk of a WebP file (empty when there is none).
std::vector<uint8_t> webp_exif(const std::vector<uint8_t>& bytes);

}  // namespace comfy::io
