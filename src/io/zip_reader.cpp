#include "io/zip_reader.h"

#include <cstring>

#include "core/error.h"

namespace comfy::io {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDir = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDir = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Reader {
  const uint8_t* data;
  std::size_t size;
  const std::string& what;
  [[noreturn]] void fail(const std::string& why) const {
    throw ComfyError("RuntimeError", "cannot read " + what + ": not a valid PyTorch zip archive (" + why + ")");
  }
  void need(uint64_t offset, uint64_t len) const {
    if (offset > size || len > size - offset) fail("truncated");
  }
  uint64_t u(uint64_t offset, int bytes) const {
    need(offset, static_cast<uint64_t>(bytes));
    return le(data + offset, bytes);
  }
};

}  // namespace

bool looks_like_zip(const uint8_t* data, std::size_t size) { return size >= 4 && le(data, 4) == kLocalHeader; }

std::vector<ZipEntry> read_zip_entries(const uint8_t* data, std::size_t size, const std::string& what) {
  Reader r{data, size, what};
  if (size < 22) r.fail("too short");
  // The end-of-central-directory record is within the last 22 + 65535 bytes (its comment).
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (uint64_t pos = size - 22 + 1; pos-- > lowest;) {
    if (le(data + pos, 4) == kEndOfCentralDir) {
      eocd = pos;
      break;
    }
  }
  if (eocd == UINT64_MAX) r.fail("no end of central directory record");
  uint64_t count = r.u(eocd + 10, 2);
  uint64_t cd_size = r.u(eocd + 12, 4);
  uint64_t cd_offset = r.u(eocd + 16, 4);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    if (eocd < 20 || r.u(eocd - 20, 4) != kZip64Locator) r.fail("zip64 locator missing");
    const uint64_t rec = r.u(eocd - 20 + 8, 8);
    if (r.u(rec, 4) != kZip64EndOfCentralDir) r.fail("bad zip64 end of central directory");
    count = r.u(rec + 32, 8);
    cd_size = r.u(rec + 40, 8);
    cd_offset = r.u(rec + 48, 8);
  }
  r.need(cd_offset, cd_size);
  if (count > cd_size / 46 + 1) r.fail("entry count larger than the central directory");
  std::vector<ZipEntry> entries;
  entries.reserve(count);
  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (r.u(pos, 4) != kCentralHeader) r.fail("bad central directory entry");
    ZipEntry e;
    e.method = static_cast<uint16_t>(r.u(pos + 10, 2));
    uint64_t csize = r.u(pos + 20, 4);
    uint64_t usize = r.u(pos + 24, 4);
    const uint64_t name_len = r.u(pos + 28, 2), extra_len = r.u(pos + 30, 2), comment_len = r.u(pos + 32, 2);
    uint64_t local = r.u(pos + 42, 4);
    r.need(pos + 46, name_len + extra_len + comment_len);
    e.name.assign(reinterpret_cast<const char*>(data + pos + 46), name_len);
    // zip64 extended information: the fields that are 0xFFFFFFFF in the header, in this order.
    uint64_t x = pos + 46 + name_len;
    const uint64_t x_end = x + extra_len;
    while (x + 4 <= x_end) {
      const uint64_t id = r.u(x, 2), len = r.u(x + 2, 2);
      if (x + 4 + len > x_end) r.fail("bad extra field");
      if (id == 0x0001) {
        uint64_t f = x + 4;
        auto take = [&](uint64_t& v) {
          if (v != 0xFFFFFFFF) return;
          if (f + 8 > x + 4 + len) r.fail("short zip64 field");
          v = r.u(f, 8);
          f += 8;
        };
        take(usize);
        take(csize);
        take(local);
      }
      x += 4 + len;
    }
    if (e.method != 0) {
      r.fail("entry '" + e.name + "' is compressed (method " + std::to_string(e.method) +
             "); torch.save stores entries uncompressed");
    }
    if (csize != usize) r.fail("entry '" + e.name + "' has different stored and uncompressed sizes");
    if (r.u(local, 4) != kLocalHeader) r.fail("bad local header for '" + e.name + "'");
    const uint64_t lname = r.u(local + 26, 2), lextra = r.u(local + 28, 2);
    e.data_offset = local + 30 + lname + lextra;
    e.size = usize;
    r.need(e.data_offset, e.size);
    entries.push_back(std::move(e));
    pos += 46 + name_len + extra_len + comment_len;
  }
  return entries;
}

}  // namespace comfy::io
