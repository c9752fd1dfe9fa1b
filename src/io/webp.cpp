#include "io/webp.h"

#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace comfy::io {

bool is_webp(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 12 && std::memcmp(bytes.data(), "RIFF", 4) == 0 && std::memcmp(bytes.data() + 8, "WEBP", 4) == 0;
}

DecodedImage decode_webp(const std::vector<uint8_t>& bytes, const std::string& what) {
  if (!is_webp(bytes)) throw ComfyError("UnidentifiedImageError", "cannot identify image file '" + what + "'");
  WebPData data{bytes.data(), bytes.size()};
  WebPAnimDecoderOptions opts;
  if (!WebPAnimDecoderOptionsInit(&opts)) throw ComfyError("OSError", "WebP: library version mismatch");
  opts.color_mode = MODE_RGBA;
  opts.use_threads = 0;
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> dec(WebPAnimDecoderNew(&data, &opts),
                                                                   WebPAnimDecoderDelete);
  if (!dec) throw ComfyError("OSError", "cannot read image file '" + what + "': not a valid WebP file");
  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(dec.get(), &info)) throw ComfyError("OSError", "cannot read image file '" + what + "'");
  const WebPDemuxer* demux = WebPAnimDecoderGetDemuxer(dec.get());
  bool alpha = (WebPDemuxGetI(demux, WEBP_FF_FORMAT_FLAGS) & ALPHA_FLAG) != 0;
  DecodedImage img;
  img.format = "WEBP";
  img.mode = alpha ? "RGBA" : "RGB";
  img.channels = alpha ? 4 : 3;
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demux, "EXIF", 1, &chunk)) {
    img.exif_orientation = exif_orientation(chunk.chunk.bytes, chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  size_t n = static_cast<size_t>(info.canvas_width) * info.canvas_height;
  while (WebPAnimDecoderHasMoreFrames(dec.get())) {
    uint8_t* buf = nullptr;
    int timestamp = 0;
    if (!WebPAnimDecoderGetNext(dec.get(), &buf, &timestamp))
      throw ComfyError("OSError", "cannot read image file '" + what + "': corrupt WebP frame");
    Frame f;
    f.width = static_cast<int>(info.canvas_width);
    f.height = static_cast<int>(info.canvas_height);
    if (alpha) {
      f.pixels.assign(buf, buf + n * 4);
    } else {
      f.pixels.resize(n * 3);
      for (size_t i = 0; i < n; ++i) std::memcpy(&f.pixels[i * 3], buf + i * 4, 3);
    }
    img.frames.push_back(std::move(f));
  }
  if (img.frames.empty()) throw ComfyError("OSError", "cannot read image file '" + what + "': no frames");
  return img;
}

std::vector<uint8_t> encode_animated_webp(const std::vector<const uint8_t*>& frames, int width, int height,
                                          int channels, const WebpAnimOptions& o) {
  if (frames.empty()) throw ComfyError("ValueError", "WebP: no frames to write");
  if (width <= 0 || height <= 0 || width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION)
    throw ComfyError("ValueError", "WebP: image size " + std::to_string(width) + "x" + std::to_string(height) +
                                       " is outside 1.." + std::to_string(WEBP_MAX_DIMENSION));
  if (channels != 3 && channels != 4) throw ComfyError("ValueError", "WebP: frames must be RGB or RGBA");
  WebPAnimEncoderOptions eopts;
  if (!WebPAnimEncoderOptionsInit(&eopts)) throw ComfyError("OSError", "WebP: library version mismatch");
  eopts.anim_params.loop_count = 0;
  std::unique_ptr<WebPAnimEncoder, void (*)(WebPAnimEncoder*)> enc(WebPAnimEncoderNew(width, height, &eopts),
                                                                   WebPAnimEncoderDelete);
  if (!enc) throw ComfyError("MemoryError", "WebP: cannot create the encoder");
  WebPConfig config;
  WebPConfigInit(&config);
  config.lossless = o.lossless ? 1 : 0;
  config.quality = static_cast<float>(std::clamp(o.quality, 0, 100));
  config.method = std::clamp(o.method, 0, 6);
  if (!WebPValidateConfig(&config)) throw ComfyError("ValueError", "WebP: invalid encoder settings");
  int timestamp = 0;
  for (const uint8_t* frame : frames) {
    WebPPicture pic;
    WebPPictureInit(&pic);
    pic.width = width;
    pic.height = height;
    pic.use_argb = 1;
    int ok = channels == 4 ? WebPPictureImportRGBA(&pic, frame, width * 4) : WebPPictureImportRGB(&pic, frame, width * 3);
    if (!ok || !WebPAnimEncoderAdd(enc.get(), &pic, timestamp, &config)) {
      WebPPictureFree(&pic);
      throw ComfyError("OSError", std::string("WebP: cannot encode a frame: ") + WebPAnimEncoderGetError(enc.get()));
    }
    WebPPictureFree(&pic);
    timestamp += o.duration_ms;
  }
  WebPAnimEncoderAdd(enc.get(), nullptr, timestamp, nullptr);
  WebPData assembled;
  WebPDataInit(&assembled);
  if (!WebPAnimEncoderAssemble(enc.get(), &assembled))
    throw ComfyError("OSError", std::string("WebP: cannot assemble: ") + WebPAnimEncoderGetError(enc.get()));
  std::vector<uint8_t> out(assembled.bytes, assembled.bytes + assembled.size);
  WebPDataClear(&assembled);
  if (o.exif.empty()) return out;
  WebPData in{out.data(), out.size()};
  std::unique_ptr<WebPMux, void (*)(WebPMux*)> mux(WebPMuxCreate(&in, 1), WebPMuxDelete);
  WebPData exif{o.exif.data(), o.exif.size()};
  WebPData final_data;
  WebPDataInit(&final_data);
  if (!mux || WebPMuxSetChunk(mux.get(), "EXIF", &exif, 1) != WEBP_MUX_OK ||
      WebPMuxAssemble(mux.get(), &final_data) != WEBP_MUX_OK)
    throw ComfyError("OSError", "WebP: cannot add the EXIF metadata");
  out.assign(final_data.bytes, final_data.bytes + final_data.size);
  WebPDataClear(&final_data);
  return out;
}

namespace {
void put16(std::vector<uint8_t>& o, uint16_t v) { o.push_back(v >> 8); o.push_back(v & 0xff); }
void put32(std::vector<uint8_t>& o, uint32_t v) { for (int i = 3; i >= 0; --i) o.push_back((v >> (8 * i)) & 0xff); }
}  // namespace

std::vector<uint8_t> exif_ascii_block(const std::vector<std::pair<uint16_t, std::string>>& entries_in) {
  auto entries = entries_in;
  std::sort(entries.begin(), entries.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<uint8_t> out = {'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0x00, 0x2A};
  put32(out, 8);
  put16(out, static_cast<uint16_t>(entries.size()));
  uint32_t data_offset = 8 + 2 + 12 * static_cast<uint32_t>(entries.size()) + 4;
  std::vector<uint8_t> data;
  for (auto& [tag, text] : entries) {
    std::string value = text;
    for (char& c : value)
      if (static_cast<unsigned char>(c) > 127) c = '?';  // encode("ascii", "replace")
    value.push_back('\0');
    put16(out, tag);
    put16(out, 2);
    put32(out, static_cast<uint32_t>(value.size()));
    if (value.size() <= 4) {
      std::vector<uint8_t> v(value.begin(), value.end());
      v.resize(4, 0);
      out.insert(out.end(), v.begin(), v.end());
    } else {
      put32(out, data_offset + static_cast<uint32_t>(data.size()));
      data.insert(data.end(), value.begin(), value.end());
      if (data.size() % 2) data.push_back(0);
    }
  }
  put32(out, 0);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<std::pair<uint16_t, std::string>> exif_ascii_entries(const std::vector<uint8_t>& block) {
  std::vector<std::pair<uint16_t, std::string>> out;
  size_t base = block.size() >= 6 && std::memcmp(block.data(), "Exif\0\0", 6) == 0 ? 6 : 0;
  const uint8_t* t = block.data() + base;
  size_t n = block.size() - base;
  if (n < 8) return out;
  bool le = t[0] == 'I' && t[1] == 'I';
  if (!le && !(t[0] == 'M' && t[1] == 'M')) return out;
  auto u16 = [&](size_t p) -> uint32_t { return le ? t[p] | t[p + 1] << 8 : t[p] << 8 | t[p + 1]; };
  auto u32 = [&](size_t p) -> uint32_t { return le ? u16(p) | u16(p + 2) << 16 : u16(p) << 16 | u16(p + 2); };
  size_t ifd = u32(4);
  if (ifd + 2 > n) return out;
  size_t count = u16(ifd);
  for (size_t i = 0; i < count && ifd + 2 + 12 * (i + 1) <= n; ++i) {
    size_t e = ifd + 2 + 12 * i;
    if (u16(e + 2) != 2) continue;
    size_t len = u32(e + 4), at = len <= 4 ? e + 8 : u32(e + 8);
    if (len == 0 || at > n || len > n - at) continue;
    out.emplace_back(static_cast<uint16_t>(u16(e)), std::string(reinterpret_cast<const char*>(t + at), len - 1));
  }
  return out;
}

std::vector<uint8_t> webp_exif(const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out;
  WebPData data{bytes.data(), bytes.size()};
  WebPDemuxer* demux = WebPDemux(&data);
  if (!demux) return out;
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demux, "EXIF", 1, &chunk)) {
    out.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  WebPDemuxDelete(demux);
  return out;
}

}  // namespace comfy::io
