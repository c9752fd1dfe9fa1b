#include "server/image.h"

#include <png.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <jpeglib.h>

#include "io/jpeg.h"

namespace comfy::server {

namespace {

struct Rgba {
  uint32_t width = 0, height = 0;
  bool had_alpha = false;
  std::vector<uint8_t> pixels;  // RGBA8
};

bool decode_png(const std::string& bytes, Rgba& img, std::string& error) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    error = std::string("not a PNG picture: ") + image.message;
    return false;
  }
  img.had_alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = PNG_FORMAT_RGBA;
  img.width = image.width;
  img.height = image.height;
  img.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, img.pixels.data(), 0, nullptr)) {
    error = image.message;
    png_image_free(&image);
    return false;
  }
  return true;
}

bool encode_png(const std::vector<uint8_t>& pixels, uint32_t w, uint32_t h, bool alpha, std::string& out,
                std::string& error) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = w;
  image.height = h;
  image.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr)) {
    error = image.message;
    return false;
  }
  out.resize(size);
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, pixels.data(), 0, nullptr)) {
    error = image.message;
    return false;
  }
  out.resize(size);
  return true;
}

std::vector<uint8_t> to_rgb(const Rgba& img) {
  std::vector<uint8_t> rgb(static_cast<size_t>(img.width) * img.height * 3);
  for (size_t i = 0, n = static_cast<size_t>(img.width) * img.height; i < n; ++i)
    std::memcpy(&rgb[i * 3], &img.pixels[i * 4], 3);
  return rgb;
}

constexpr uint64_t kMaxUploadPixels = 64ull << 20;

bool starts_with(const std::string& s, size_t offset, const char* magic, size_t n) {
  return s.size() >= offset + n && std::memcmp(s.data() + offset, magic, n) == 0;
}

std::string check_png(const std::string& bytes) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size()))
    return std::string("the PNG cannot be read: ") + image.message;
  if (static_cast<uint64_t>(image.width) * image.height > kMaxUploadPixels) {
    png_image_free(&image);
    return "the PNG is too large (" + std::to_string(image.width) + "x" + std::to_string(image.height) + ")";
  }
  image.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    return "the PNG is corrupt: " + message;
  }
  return "";
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

// Decodes a JPEG whole; `img` may be null (only checks). "" on success, else why not.
std::string decode_jpeg_into(const std::string& bytes, Rgba* img) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = [](j_common_ptr c) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    e->mgr.format_message(c, e->message);
    std::longjmp(e->jump, 1);
  };
  err.mgr.emit_message = [](j_common_ptr, int) {};
  jpeg_create_decompress(&cinfo);
  std::vector<uint8_t> row;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return std::string("the JPEG is corrupt: ") + err.message;
  }
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > kMaxUploadPixels) {
    jpeg_destroy_decompress(&cinfo);
    return "the JPEG is too large";
  }
  cinfo.out_color_space = JCS_RGB;  // grayscale and YCbCr alike come out as RGB
  jpeg_start_decompress(&cinfo);
  row.resize(static_cast<size_t>(cinfo.output_width) * cinfo.output_components);
  if (img) {
    img->width = cinfo.output_width;
    img->height = cinfo.output_height;
    img->had_alpha = false;
    img->pixels.assign(static_cast<size_t>(img->width) * img->height * 4, 255);
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW p = row.data();
    const size_t y = cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &p, 1);
    if (img)
      for (size_t x = 0; x < cinfo.output_width; ++x)
        std::memcpy(&img->pixels[(y * cinfo.output_width + x) * 4], &row[x * 3], 3);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return "";
}

std::string check_jpeg(const std::string& bytes) { return decode_jpeg_into(bytes, nullptr); }

std::string check_webp(const std::string& bytes) {
  auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, bytes.size(), &features) != VP8_STATUS_OK) return "the WebP cannot be read";
  if (features.has_animation) return "";  // animated WebP: the header is enough
  if (static_cast<uint64_t>(features.width) * features.height > kMaxUploadPixels) return "the WebP is too large";
  int w = 0, h = 0;
  uint8_t* pixels = WebPDecodeRGBA(data, bytes.size(), &w, &h);
  if (!pixels) return "the WebP is corrupt";
  WebPFree(pixels);
  return "";
}

bool decode_webp(const std::string& bytes, Rgba& img, std::string& error) {
  auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  WebPBitstreamFeatures features;
  if (WebPGetFeatures(data, bytes.size(), &features) != VP8_STATUS_OK ||
      static_cast<uint64_t>(features.width) * features.height > kMaxUploadPixels) {
    error = "not a WebP picture this server can read";
    return false;
  }
  int w = 0, h = 0;
  uint8_t* pixels = WebPDecodeRGBA(data, bytes.size(), &w, &h);
  if (!pixels) {
    error = "the WebP is corrupt";
    return false;
  }
  img.width = static_cast<uint32_t>(w);
  img.height = static_cast<uint32_t>(h);
  img.had_alpha = features.has_alpha != 0;
  img.pixels.assign(pixels, pixels + static_cast<size_t>(w) * h * 4);
  WebPFree(pixels);
  return true;
}

// Any picture the upload route stores whole: PNG, JPEG or WebP (as PIL's Image.open reads them
// for ComfyUI's /view and /upload/mask).
bool decode_picture(const std::string& bytes, Rgba& img, std::string& error) {
  if (starts_with(bytes, 0, "\xff\xd8\xff", 3)) {
    error = decode_jpeg_into(bytes, &img);
    return error.empty();
  }
  if (starts_with(bytes, 0, "RIFF", 4) && starts_with(bytes, 8, "WEBP", 4)) return decode_webp(bytes, img, error);
  return decode_png(bytes, img, error);
}

}  // namespace

std::string upload_refusal(const std::string& bytes) {
  if (starts_with(bytes, 0, "\x89PNG\r\n\x1a\n", 8)) return check_png(bytes);
  if (starts_with(bytes, 0, "\xff\xd8\xff", 3)) return check_jpeg(bytes);
  if (starts_with(bytes, 0, "RIFF", 4) && starts_with(bytes, 8, "WEBP", 4)) return check_webp(bytes);
  // Recognised by signature: other pictures, and the media the web UI uploads here too.
  static const struct {
    size_t offset;
    const char* magic;
    size_t size;
  } kKnown[] = {
      {0, "GIF87a", 6}, {0, "GIF89a", 6}, {0, "BM", 2}, {0, "II*\0", 4}, {0, "MM\0*", 4},  // pictures
      {8, "WAVE", 4}, {8, "AVI ", 4}, {0, "ID3", 3}, {0, "fLaC", 4}, {0, "OggS", 4},       // audio, AVI
      {4, "ftyp", 4}, {0, "\x1a\x45\xdf\xa3", 4},                                           // MP4/MOV/M4A, WebM/MKV
      {0, "glTF", 4},                                                                      // GLB
  };
  for (auto& k : kKnown)
    if (starts_with(bytes, k.offset, k.magic, k.size)) return "";
  if (bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0xff && (static_cast<uint8_t>(bytes[1]) & 0xe0) == 0xe0)
    return "";  // an MPEG audio frame (MP3 without ID3)
  return "the file is not a picture, audio or video file this server accepts";
}

bool extract_channel(const std::string& png, bool alpha, std::string& out, std::string& error) {
  Rgba img;
  if (!decode_picture(png, img, error)) return false;
  if (!alpha) return encode_png(to_rgb(img), img.width, img.height, false, out, error);
  for (size_t i = 0, n = static_cast<size_t>(img.width) * img.height; i < n; ++i) {
    uint8_t a = img.had_alpha ? img.pixels[i * 4 + 3] : 255;
    img.pixels[i * 4] = img.pixels[i * 4 + 1] = img.pixels[i * 4 + 2] = 0;
    img.pixels[i * 4 + 3] = a;
  }
  return encode_png(img.pixels, img.width, img.height, true, out, error);
}

bool encode_preview(const std::string& png, const std::string& format, int quality, bool drop_alpha,
                    std::string& out, std::string& error) {
  Rgba img;
  if (!decode_picture(png, img, error)) return false;
  if (format == "jpeg") {
    out = io::encode_jpeg(to_rgb(img).data(), img.width, img.height, quality);
    return true;
  }
  uint8_t* data = nullptr;
  size_t size = 0;
  if (drop_alpha || !img.had_alpha) {
    auto rgb = to_rgb(img);
    size = WebPEncodeRGB(rgb.data(), static_cast<int>(img.width), static_cast<int>(img.height),
                         static_cast<int>(img.width) * 3, static_cast<float>(quality), &data);
  } else {
    size = WebPEncodeRGBA(img.pixels.data(), static_cast<int>(img.width), static_cast<int>(img.height),
                          static_cast<int>(img.width) * 4, static_cast<float>(quality), &data);
  }
  if (!size) {
    error = "WebP encoding failed";
    return false;
  }
  out.assign(reinterpret_cast<char*>(data), size);
  WebPFree(data);
  return true;
}

bool merge_mask_alpha(const std::string& original_png, const std::string& mask_png, std::string& out,
                      std::string& error) {
  Rgba original, mask;
  if (!decode_picture(original_png, original, error) || !decode_picture(mask_png, mask, error)) return false;
  if (original.width != mask.width || original.height != mask.height) {
    error = "images do not match";  // PIL's putalpha raises ValueError here
    return false;
  }
  for (size_t i = 0, n = static_cast<size_t>(original.width) * original.height; i < n; ++i)
    original.pixels[i * 4 + 3] = mask.pixels[i * 4 + 3];
  return encode_png(original.pixels, original.width, original.height, true, out, error);
}

}  // namespace comfy::server
