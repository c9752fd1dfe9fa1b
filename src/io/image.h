// Decoded images as Pillow opens them: the pixel mode ComfyUI's loaders look at ("L", "LA",
// "RGB", "RGBA", "I" for 16-bit grey, "P" for palette images), every frame of animated files, the
// text metadata and the EXIF orientation. Decoders (png.h, jpeg.h, webp.h) fill this; image.h
// picks one by the file's signature, as Image.open does.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace comfy::io {

// One frame, 8 bits per sample, rows top to bottom, channels interleaved. Mode "I" frames keep
// their 16-bit samples in `wide` instead (one per pixel).
struct Frame {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
  std::vector<int32_t> wide;
};

struct DecodedImage {
  std::string format;  // "PNG", "JPEG", "WEBP", "MPO"
  std::string mode;    // "L", "LA", "RGB", "RGBA", "I", "P" (palette, expanded to RGB/RGBA below)
  int channels = 0;    // samples per pixel in Frame::pixels: 1, 2, 3 or 4 (1 for "I")
  bool palette_transparency = false;  // a palette image with a tRNS chunk (pixels are RGBA)
  std::vector<Frame> frames;
  std::map<std::string, std::string> text;  // tEXt / zTXt / iTXt chunks
  int exif_orientation = 1;                 // 1..8, 1 = as stored
};

// Reads the file and decodes it; throws ComfyError("UnidentifiedImageError" or "OSError", text
// naming the file) when it is not an image we can read or is corrupt.
DecodedImage read_image(const std::filesystem::path& file);
DecodedImage decode_image(const std::vector<uint8_t>& bytes, const std::string& what);

// The file's bytes; ComfyError("FileNotFoundError") when it cannot be opened.
std::vector<uint8_t> read_file(const std::filesystem::path& file);
// Writes bytes to `file` through a temporary file in the same folder and a rename, so an error
// never leaves a half-written file behind or harms one already there. Throws ComfyError("OSError").
void write_file_atomic(const std::filesystem::path& file, const std::vector<uint8_t>& bytes);

// The orientation tag (0x0112) of a TIFF-structured EXIF block ("Exif\0\0" prefix optional);
// 1 when absent or unreadable.
int exif_orientation(const uint8_t* data, size_t size);
// Applies ImageOps.exif_transpose's transform for `orientation` to a frame.
Frame apply_orientation(const Frame& f, int channels, int orientation);

}  // namespace comfy::io
