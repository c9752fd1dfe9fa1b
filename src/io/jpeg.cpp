#include "io/jpeg.h"

#include <jpeglib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace comfy::io {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}
void on_message(j_common_ptr, int) {}

uint8_t clip8(int v) { return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v); }

}  // namespace

bool is_jpeg(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

DecodedImage decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& what) {
  if (!is_jpeg(bytes)) throw ComfyError("UnidentifiedImageError", "cannot identify image file '" + what + "'");
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  err.message[0] = 0;
  DecodedImage img;
  img.format = "JPEG";
  Frame f;
  std::vector<uint8_t> row;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw ComfyError("OSError", "cannot read image file '" + what + "': " + err.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length > 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0)
      img.exif_orientation = exif_orientation(m->data, m->data_length);
    if (m->marker == JPEG_APP0 + 2 && m->data_length >= 4 && std::memcmp(m->data, "MPF\0", 4) == 0) img.format = "MPO";
  }
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  bool grey = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = cmyk ? JCS_CMYK : grey ? JCS_GRAYSCALE : JCS_RGB;
  cinfo.dct_method = JDCT_ISLOW;
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > (uint64_t(1) << 31))
  {
    jpeg_destroy_decompress(&cinfo);
    throw ComfyError("OSError", "cannot read image file '" + what + "': image too large");
  }
  jpeg_start_decompress(&cinfo);
  int comps = cinfo.output_components;
  f.width = static_cast<int>(cinfo.output_width);
  f.height = static_cast<int>(cinfo.output_height);
  img.channels = grey ? 1 : 3;
  img.mode = grey ? "L" : "RGB";
  f.pixels.resize(static_cast<size_t>(f.width) * f.height * img.channels);
  row.resize(static_cast<size_t>(f.width) * comps);
  // Adobe CMYK files store inverted samples (Pillow's "CMYK;I" raw mode).
  bool inverted = cmyk && cinfo.saw_Adobe_marker;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW r = row.data();
    size_t y = cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &r, 1);
    uint8_t* out = f.pixels.data() + y * f.width * img.channels;
    if (!cmyk) {
      std::memcpy(out, row.data(), row.size());
      continue;
    }
    for (int x = 0; x < f.width; ++x) {
      int c[4];
      for (int k = 0; k < 4; ++k) c[k] = inverted ? 255 - row[x * 4 + k] : row[x * 4 + k];
      int nk = 255 - c[3];
      for (int k = 0; k < 3; ++k) {
        int t = c[k] * nk + 128;
        out[x * 3 + k] = clip8(nk - ((t + (t >> 8)) >> 8));
      }
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  img.frames.push_back(std::move(f));
  return img;
}

std::string encode_jpeg(const uint8_t* rgb, uint32_t width, uint32_t height, int quality) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &mem, &size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, std::clamp(quality, 1, 100), TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rgb + static_cast<size_t>(cinfo.next_scanline) * width * 3);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(mem), size);
  jpeg_destroy_compress(&cinfo);
  std::free(mem);
  return out;
}

}  // namespace comfy::io
