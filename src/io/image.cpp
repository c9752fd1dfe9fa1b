#include "io/image.h"

#include <cstring>
#include <fstream>
#include <random>
#include <system_error>

#include "core/error.h"
#include "io/jpeg.h"
#include "io/png.h"
#include "io/webp.h"

namespace comfy::io {

std::vector<uint8_t> read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ComfyError("FileNotFoundError", "[Errno 2] No such file or directory: '" + file.string() + "'");
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file_atomic(const std::filesystem::path& file, const std::vector<uint8_t>& bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::filesystem::path tmp = file;
  tmp += ".tmp" + std::to_string(rng() % 1000000000);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw ComfyError("OSError", "cannot write '" + file.string() + "': the folder is not writable");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw ComfyError("OSError", "cannot write '" + file.string() + "': write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, file, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw ComfyError("OSError", "cannot write '" + file.string() + "': " + ec.message());
  }
}

DecodedImage decode_image(const std::vector<uint8_t>& bytes, const std::string& what) {
  if (is_png(bytes)) return decode_png(bytes, what);
  if (is_jpeg(bytes)) return decode_jpeg(bytes, what);
  if (is_webp(bytes)) return decode_webp(bytes, what);
  throw ComfyError("UnidentifiedImageError", "cannot identify image file '" + what + "'");
}

DecodedImage read_image(const std::filesystem::path& file) { return decode_image(read_file(file), file.string()); }

int exif_orientation(const uint8_t* d, size_t n) {
  if (n >= 6 && std::memcmp(d, "Exif\0\0", 6) == 0) {
    d += 6;
    n -= 6;
  }
  if (n < 8) return 1;
  bool le = d[0] == 'I' && d[1] == 'I';
  if (!le && !(d[0] == 'M' && d[1] == 'M')) return 1;
  auto u16 = [&](size_t p) -> uint32_t { return le ? d[p] | d[p + 1] << 8 : d[p] << 8 | d[p + 1]; };
  auto u32 = [&](size_t p) -> uint32_t { return le ? u16(p) | u16(p + 2) << 16 : u16(p) << 16 | u16(p + 2); };
  size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    size_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) break;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {
      uint32_t v = u16(e + 8);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
  }
  return 1;
}

namespace {
template <class T>
std::vector<T> orient(const std::vector<T>& src, int w, int h, int c, int o, int& ow, int& oh) {
  bool swap = o >= 5;
  ow = swap ? h : w;
  oh = swap ? w : h;
  std::vector<T> out(src.size());
  for (int y = 0; y < oh; ++y)
    for (int x = 0; x < ow; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = w - 1 - x; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        case 8: sx = w - 1 - y; sy = x; break;
      }
      std::memcpy(&out[(static_cast<size_t>(y) * ow + x) * c], &src[(static_cast<size_t>(sy) * w + sx) * c], sizeof(T) * c);
    }
  return out;
}
}  // namespace

Frame apply_orientation(const Frame& f, int channels, int orientation) {
  if (orientation <= 1 || orientation > 8) return f;
  Frame out;
  if (!f.wide.empty()) out.wide = orient(f.wide, f.width, f.height, 1, orientation, out.width, out.height);
  else out.pixels = orient(f.pixels, f.width, f.height, channels, orientation, out.width, out.height);
  return out;
}

}  // namespace comfy::io
