#include "io/png.h"

#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstring>

#include "core/error.h"
#include "io/apng.h"

namespace comfy::io {
namespace {

struct ReadState {
  const std::vector<uint8_t>* bytes;
  size_t pos = 0;
  std::string error;
};

void read_fn(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<ReadState*>(png_get_io_ptr(png));
  if (s->pos + n > s->bytes->size()) png_error(png, "image file is truncated");
  std::memcpy(out, s->bytes->data() + s->pos, n);
  s->pos += n;
}

void error_fn(png_structp png, png_const_charp msg) {
  auto* text = static_cast<std::string*>(png_get_error_ptr(png));
  if (text) *text = msg;
  png_longjmp(png, 1);
}
void warning_fn(png_structp, png_const_charp) {}

void write_fn(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}
void flush_fn(png_structp) {}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void put_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, out.data() + start, static_cast<uInt>(out.size() - start));
  put_u32(out, static_cast<uint32_t>(crc));
}

// Scanlines with filter type 0, zlib-compressed at `level`.
std::vector<uint8_t> compress_frame(const uint8_t* pixels, int width, int height, int channels, int level) {
  size_t row = static_cast<size_t>(width) * channels;
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * height);
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), pixels + y * row, pixels + (y + 1) * row);
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> out(size);
  if (compress2(out.data(), &size, raw.data(), static_cast<uLong>(raw.size()), level) != Z_OK)
    throw ComfyError("OSError", "PNG: compression failed");
  out.resize(size);
  return out;
}

int color_type_for(int channels) {
  switch (channels) {
    case 1: return PNG_COLOR_TYPE_GRAY;
    case 2: return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3: return PNG_COLOR_TYPE_RGB;
    case 4: return PNG_COLOR_TYPE_RGBA;
  }
  throw ComfyError("ValueError", "PNG: cannot write an image with " + std::to_string(channels) + " channels");
}

void check_size(int width, int height) {
  if (width <= 0 || height <= 0 || width > 65535 * 4 || height > 65535 * 4)
    throw ComfyError("ValueError", "PNG: invalid image size " + std::to_string(width) + "x" + std::to_string(height));
}

}  // namespace

bool is_png(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 8 && png_sig_cmp(bytes.data(), 0, 8) == 0;
}

DecodedImage decode_png(const std::vector<uint8_t>& bytes, const std::string& what) {
  if (!is_png(bytes)) throw ComfyError("UnidentifiedImageError", "cannot identify image file '" + what + "'");
  std::string error;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &error, error_fn, warning_fn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw ComfyError("MemoryError", "PNG: out of memory");
  }
  ReadState state{&bytes, 0, {}};
  DecodedImage img;
  img.format = "PNG";
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw ComfyError("OSError", "cannot read image file '" + what + "': " + error);
  }
  png_set_read_fn(png, &state, read_fn);
  png_set_user_limits(png, 1u << 20, 1u << 20);
  png_read_info(png, info);
  png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
  if (static_cast<uint64_t>(width) * height > (uint64_t(1) << 31)) png_error(png, "image too large");
  bool wide_grey = type == PNG_COLOR_TYPE_GRAY && depth == 16;
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) {
      png_set_tRNS_to_alpha(png);
      img.palette_transparency = true;
    }
    img.mode = "P";
    img.channels = img.palette_transparency ? 4 : 3;
  } else {
    // Pillow ignores tRNS on grey and RGB images for the mode (it only lands in info).
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !wide_grey) png_set_strip_16(png);  // high byte, as Pillow's ;16B unpackers
    if (wide_grey) png_set_swap(png);                      // native-endian 16-bit samples
    switch (type) {
      case PNG_COLOR_TYPE_GRAY: img.mode = wide_grey ? "I" : "L"; img.channels = 1; break;
      case PNG_COLOR_TYPE_GRAY_ALPHA: img.mode = "LA"; img.channels = 2; break;
      case PNG_COLOR_TYPE_RGB: img.mode = "RGB"; img.channels = 3; break;
      default: img.mode = "RGBA"; img.channels = 4; break;
    }
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  pixels.resize(rowbytes * height);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = pixels.data() + y * rowbytes;
  png_read_image(png, rows.data());
  png_read_end(png, info);

  png_textp text = nullptr;
  int n_text = 0;
  png_get_text(png, info, &text, &n_text);
  for (int i = 0; i < n_text; ++i)
    img.text[text[i].key] = std::string(text[i].text ? text[i].text : "", text[i].text ? std::strlen(text[i].text) : 0);
  png_uint_32 exif_len = 0;
  png_bytep exif = nullptr;
  if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif) img.exif_orientation = exif_orientation(exif, exif_len);
  png_destroy_read_struct(&png, &info, nullptr);

  Frame f;
  f.width = static_cast<int>(width);
  f.height = static_cast<int>(height);
  if (wide_grey) {
    f.wide.resize(static_cast<size_t>(width) * height);
    for (size_t i = 0; i < f.wide.size(); ++i) {
      uint16_t v;
      std::memcpy(&v, pixels.data() + 2 * i, 2);
      f.wide[i] = v;
    }
  } else {
    f.pixels = std::move(pixels);
  }
  img.frames.push_back(std::move(f));
  read_apng_frames(bytes, img, what);  // animated PNGs: the other frames, composited (apng.h)
  return img;
}

std::vector<uint8_t> encode_png(const uint8_t* pixels, int width, int height, int channels, int compress_level,
                                const TextChunks& text) {
  check_size(width, height);
  int color = color_type_for(channels);
  std::vector<uint8_t> out;
  std::string error;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, error_fn, warning_fn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw ComfyError("MemoryError", "PNG: out of memory");
  }
  std::vector<png_text> chunks(text.size());
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw ComfyError("OSError", "PNG: cannot encode image: " + error);
  }
  png_set_write_fn(png, &out, write_fn, flush_fn);
  png_set_compression_level(png, compress_level);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, color,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  for (size_t i = 0; i < text.size(); ++i) {
    chunks[i] = png_text{};
    chunks[i].compression = PNG_TEXT_COMPRESSION_NONE;
    chunks[i].key = const_cast<char*>(text[i].first.c_str());
    chunks[i].text = const_cast<char*>(text[i].second.c_str());
    chunks[i].text_length = text[i].second.size();
  }
  if (!chunks.empty()) png_set_text(png, info, chunks.data(), static_cast<int>(chunks.size()));
  png_write_info(png, info);
  size_t row = static_cast<size_t>(width) * channels;
  for (int y = 0; y < height; ++y) png_write_row(png, const_cast<png_bytep>(pixels + y * row));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::vector<uint8_t> encode_apng(const std::vector<const uint8_t*>& frames, int width, int height, int channels,
                                 int duration_ms, int compress_level, const std::vector<RawChunk>& after_idat) {
  check_size(width, height);
  int color = color_type_for(channels);
  if (frames.empty()) throw ComfyError("ValueError", "PNG: no frames to write");
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> d;
  put_u32(d, static_cast<uint32_t>(width));
  put_u32(d, static_cast<uint32_t>(height));
  d.insert(d.end(), {8, static_cast<uint8_t>(color), 0, 0, 0});
  put_chunk(out, "IHDR", d);
  d.clear();
  put_u32(d, static_cast<uint32_t>(frames.size()));
  put_u32(d, 0);  // loop forever
  put_chunk(out, "acTL", d);
  uint32_t sequence = 0;
  uint16_t delay = static_cast<uint16_t>(std::min(duration_ms, 65535));
  for (size_t i = 0; i < frames.size(); ++i) {
    d.clear();
    put_u32(d, sequence++);
    put_u32(d, static_cast<uint32_t>(width));
    put_u32(d, static_cast<uint32_t>(height));
    put_u32(d, 0);
    put_u32(d, 0);
    d.insert(d.end(), {static_cast<uint8_t>(delay >> 8), static_cast<uint8_t>(delay & 0xff), 0x03, 0xe8, 0, 0});
    put_chunk(out, "fcTL", d);
    std::vector<uint8_t> data = compress_frame(frames[i], width, height, channels, compress_level);
    if (i == 0) {
      put_chunk(out, "IDAT", data);
    } else {
      d.clear();
      put_u32(d, sequence++);
      d.insert(d.end(), data.begin(), data.end());
      put_chunk(out, "fdAT", d);
    }
  }
  for (auto& c : after_idat) {
    if (c.type.size() != 4) throw ComfyError("ValueError", "PNG: chunk type must have four letters");
    put_chunk(out, c.type.c_str(), c.data);
  }
  put_chunk(out, "IEND", {});
  return out;
}

std::vector<RawChunk> png_chunks(const std::vector<uint8_t>& bytes) {
  std::vector<RawChunk> chunks;
  if (!is_png(bytes)) return chunks;
  size_t pos = 8;
  while (pos + 12 <= bytes.size()) {
    uint32_t len = (uint32_t(bytes[pos]) << 24) | (uint32_t(bytes[pos + 1]) << 16) | (uint32_t(bytes[pos + 2]) << 8) |
                   bytes[pos + 3];
    if (pos + 12 + static_cast<size_t>(len) > bytes.size()) break;
    RawChunk c;
    c.type.assign(reinterpret_cast<const char*>(bytes.data() + pos + 4), 4);
    c.data.assign(bytes.begin() + pos + 8, bytes.begin() + pos + 8 + len);
    chunks.push_back(std::move(c));
    pos += 12 + len;
  }
  return chunks;
}

}  // namespace comfy::io
