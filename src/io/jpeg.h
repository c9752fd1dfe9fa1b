// JPEG decoding through libjpeg-turbo, with Pillow's defaults (islow DCT, fancy upsampling), so
// pixels equal Pillow's. Grey files give mode "L", colour "RGB" (CMYK converted as Pillow does);
// the EXIF orientation is read from APP1; files with an MPF APP2 segment report format "MPO".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/image.h"

namespace comfy::io {

bool is_jpeg(const std::vector<uint8_t>& bytes);
DecodedImage decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& what);
// Baseline JPEG of 8-bit RGB pixels (rows top to bottom), libjpeg's defaults at `quality`
// (Pillow's save(format="JPEG", quality=...) makes the same choices: 4:2:0, islow DCT).
std::string encode_jpeg(const uint8_t* rgb, uint32_t width, uint32_t height, int quality);

}  // namespace comfy::io
