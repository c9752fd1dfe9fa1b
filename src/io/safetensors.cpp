// The safetensors reader and writer. The validation rules are those of the reference library
// (huggingface/safetensors, safetensors/src/tensor.rs: read_metadata, Metadata::validate), which
// ComfyUI uses through safetensors.safe_open; the error kinds keep its names
// (HeaderTooLarge, MetadataIncompleteBuffer, InvalidOffset, ...) because ComfyUI's
// load_torch_file matches on them to add its hints.
#include "io/safetensors.h"
#include "io/file_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_set>

#include "core/error.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; a big-endian host needs byte swapping");

namespace comfy {
namespace {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // the reference library's MAX_HEADER_SIZE

struct DtypeDesc {
  const char* name;
  int size;              // bytes per element
  int rank;              // the reference library's Dtype enum order (its layout sort key)
  bool has_torch;        // libtorch 1.13 can hold it (fp8 as uint8 bytes)
  at::ScalarType torch;  // the tensor() dtype
};

// Every dtype of the reference format whose elements are whole bytes and that this reader can
// size; ranks follow the reference enum (BOOL < ... < U64), which only the writer uses.
constexpr std::array<DtypeDesc, 16> kDtypes{{
    {"BOOL", 1, 0, true, at::kBool},
    {"U8", 1, 4, true, at::kByte},
    {"I8", 1, 5, true, at::kChar},
    {"F8_E5M2", 1, 6, true, at::kByte},
    {"F8_E4M3", 1, 7, true, at::kByte},
    {"I16", 2, 11, true, at::kShort},
    {"U16", 2, 12, false, at::kShort},
    {"F16", 2, 13, true, at::kHalf},
    {"BF16", 2, 14, true, at::kBFloat16},
    {"I32", 4, 15, true, at::kInt},
    {"U32", 4, 16, false, at::kInt},
    {"F32", 4, 17, true, at::kFloat},
    {"C64", 8, 18, true, at::kComplexFloat},
    {"F64", 8, 19, true, at::kDouble},
    {"I64", 8, 20, true, at::kLong},
    {"U64", 8, 21, false, at::kLong},
}};

const DtypeDesc* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeDesc* dtype_for_save(at::ScalarType t) {
  switch (t) {
    case at::kBool: return find_dtype("BOOL");
    case at::kByte: return find_dtype("U8");
    case at::kChar: return find_dtype("I8");
    case at::kShort: return find_dtype("I16");
    case at::kHalf: return find_dtype("F16");
    case at::kBFloat16: return find_dtype("BF16");
    case at::kInt: return find_dtype("I32");
    case at::kFloat: return find_dtype("F32");
    case at::kComplexFloat: return find_dtype("C64");
    case at::kDouble: return find_dtype("F64");
    case at::kLong: return find_dtype("I64");
    default: return nullptr;
  }
}

[[noreturn]] void fail(const std::filesystem::path& path, const std::string& kind,
                       const std::string& detail) {
  // ComfyUI re-raises these two as ValueError with a hint (comfy/utils.py load_torch_file).
  std::string msg = "Error while deserializing header: " + kind;
  if (!detail.empty()) msg += ": " + detail;
  msg += "\n\nFile path: " + path.string();
  if (kind == "HeaderTooLarge")
    throw ComfyError("ValueError", msg + "\n\nThe safetensors file is corrupt or invalid. Make sure this is "
                                         "actually a safetensors file and not a ckpt or pt or other filetype.");
  if (kind == "MetadataIncompleteBuffer")
    throw ComfyError("ValueError", msg + "\n\nThe safetensors file is corrupt/incomplete. Check the file size "
                                         "and make sure you have copied/downloaded it correctly.");
  throw ComfyError("safetensors_rust.SafetensorError", msg);
}

[[noreturn]] void fail_os(const std::string& what, const std::filesystem::path& path, int err) {
  throw ComfyError(err == ENOENT ? "FileNotFoundError" : "OSError",
                   "[Errno " + std::to_string(err) + "] " + what + ": " + std::strerror(err) + ": '" +
                       path.string() + "'");
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool read_exact(int fd, void* buf, std::size_t n, uint64_t offset) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

bool write_all(int fd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min<std::size_t>(n, std::size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// A JSON number that is a non-negative integer (nlohmann parses those as number_unsigned).
bool as_u64(const json& v, uint64_t& out) {
  if (!v.is_number_unsigned()) return false;
  out = v.get<uint64_t>();
  return true;
}

}  // namespace

struct SafetensorsFile::Mapping : io::FileMapping {};

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail_os("cannot open safetensors file", path, errno);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail_os("cannot stat safetensors file", path, errno);
  if (!S_ISREG(st.st_mode)) fail_os("not a regular file", path, EISDIR);
  const auto file_size = static_cast<uint64_t>(st.st_size);

  // 1. The 8-byte length, then the header itself: its size is bounded by the reference limit and
  //    by the real file size before anything is allocated for it.
  if (file_size < 8)
    fail(path, "HeaderTooSmall", "the file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  if (!read_exact(f.fd, len_bytes, 8, 0)) fail_os("cannot read safetensors file", path, errno ? errno : EIO);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderSize)
    fail(path, "HeaderTooLarge", "the header claims " + std::to_string(n) + " bytes (the limit is 100000000)");
  if (8 + n > file_size)
    fail(path, "InvalidHeaderLength", "the header claims " + std::to_string(n) + " bytes but the file is only " +
                                          std::to_string(file_size) + " bytes");
  std::string header(static_cast<std::size_t>(n), '\0');
  if (n > 0 && !read_exact(f.fd, header.data(), header.size(), 8))
    fail_os("cannot read safetensors file", path, errno ? errno : EIO);

  // 2. The JSON: an object; duplicate top-level names are refused (one of them would vanish).
  json doc;
  std::string duplicate;
  try {
    std::unordered_set<std::string> seen;
    doc = json::parse(header, [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second &&
          duplicate.empty())
        duplicate = parsed.get<std::string>();
      return true;
    });
  } catch (const json::exception& e) {
    fail(path, "InvalidHeaderDeserialization", std::string("the header is not valid JSON (") + e.what() + ")");
  }
  if (!doc.is_object()) fail(path, "InvalidHeaderDeserialization", "the header is not a JSON object");
  if (!duplicate.empty()) fail(path, "InvalidHeaderDeserialization", "duplicate entry \"" + duplicate + "\"");

  auto file = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  file->data_start_ = 8 + n;

  // 3. Each entry: dtype known, shape of non-negative int64 dims, two offsets.
  for (auto& [name, entry] : doc.items()) {
    if (name == "__metadata__") {
      if (entry.is_null()) continue;
      if (!entry.is_object()) fail(path, "InvalidHeaderDeserialization", "\"__metadata__\" is not an object");
      for (auto& [mk, mv] : entry.items())
        if (!mv.is_string())
          fail(path, "InvalidHeaderDeserialization", "\"__metadata__\" value of \"" + mk + "\" is not a string");
      file->metadata_ = entry;
      continue;
    }
    const std::string where = "tensor \"" + name + "\"";
    if (!entry.is_object()) fail(path, "InvalidHeaderDeserialization", where + " is not an object");
    auto dt = entry.find("dtype");
    auto sh = entry.find("shape");
    auto off = entry.find("data_offsets");
    if (dt == entry.end() || sh == entry.end() || off == entry.end())
      fail(path, "InvalidHeaderDeserialization", where + " lacks dtype, shape or data_offsets");
    if (!dt->is_string()) fail(path, "InvalidHeaderDeserialization", where + ": dtype is not a string");
    TensorInfo info;
    info.dtype = dt->get<std::string>();
    const DtypeDesc* desc = find_dtype(info.dtype);
    if (!desc) fail(path, "InvalidHeaderDeserialization", where + ": unknown or unsupported dtype \"" + info.dtype + "\"");
    if (!sh->is_array()) fail(path, "InvalidHeaderDeserialization", where + ": shape is not an array");
    for (const auto& d : *sh) {
      uint64_t v = 0;
      if (!as_u64(d, v) || v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(path, "InvalidHeaderDeserialization", where + ": shape entry " + d.dump() + " is not a size");
      info.shape.push_back(static_cast<int64_t>(v));
    }
    if (!off->is_array() || off->size() != 2 || !as_u64((*off)[0], info.begin) || !as_u64((*off)[1], info.end))
      fail(path, "InvalidHeaderDeserialization", where + ": data_offsets is not a pair of sizes");
    file->keys_.push_back(name);
    file->index_.emplace(name, std::move(info));
  }

  // 4. The data layout, as the reference validates it: sorted by offsets, the tensors tile the
  //    data section from 0 with no hole and no overlap, each range holds exactly shape x element
  //    size bytes, and the last range ends at the end of the file.
  std::vector<const std::string*> order;
  order.reserve(file->keys_.size());
  for (const auto& k : file->keys_) order.push_back(&k);
  std::stable_sort(order.begin(), order.end(), [&](const std::string* a, const std::string* b) {
    const auto& ia = file->index_.at(*a);
    const auto& ib = file->index_.at(*b);
    return std::pair(ia.begin, ia.end) < std::pair(ib.begin, ib.end);
  });
  uint64_t covered = 0;
  for (const std::string* key : order) {
    const TensorInfo& info = file->index_.at(*key);
    const std::string where = "tensor \"" + *key + "\"";
    if (info.begin != covered || info.end < info.begin)
      fail(path, "InvalidOffset(\"" + *key + "\")",
           where + " has data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
               "] but the previous tensor ends at " + std::to_string(covered) +
               " (ranges must be contiguous, without holes or overlaps)");
    covered = info.end;
    uint64_t count = 1;
    for (int64_t d : info.shape)
      if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count))
        fail(path, "ValidationOverflow", where + ": the shape's element count overflows");
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(find_dtype(info.dtype)->size), &bytes) ||
        count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(path, "ValidationOverflow", where + ": the byte size overflows");
    if (bytes != info.nbytes())
      fail(path, "TensorInvalidInfo",
           where + ": shape and dtype " + info.dtype + " need " + std::to_string(bytes) + " bytes but data_offsets span " +
               std::to_string(info.nbytes()));
  }
  if (covered != file_size - file->data_start_)
    fail(path, "MetadataIncompleteBuffer",
         "the tensors cover " + std::to_string(covered) + " bytes but the data section is " +
             std::to_string(file_size - file->data_start_) + " bytes");

  // 5. Only now map the file (whose size is the real one, not a claimed one).
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<std::size_t>(file_size);
  mapping->addr = ::mmap(nullptr, mapping->size, PROT_READ, MAP_SHARED, f.fd, 0);
  if (mapping->addr == MAP_FAILED) fail_os("cannot map safetensors file", path, errno);
  file->mapping_ = std::move(mapping);
  return file;
}

const TensorInfo& SafetensorsFile::info(const std::string& key) const {
  auto it = index_.find(key);
  if (it == index_.end())
    throw ComfyError("KeyError", "tensor '" + key + "' not found in " + path_.string());
  return it->second;
}

at::Tensor SafetensorsFile::tensor(const std::string& key) const {
  const TensorInfo& ti = info(key);
  const DtypeDesc* desc = find_dtype(ti.dtype);
  if (!desc->has_torch)
    throw ComfyError("TypeError", "tensor '" + key + "' of " + path_.string() + " has dtype " + ti.dtype +
                                      ", which libtorch cannot represent");
  auto options = at::TensorOptions().dtype(desc->torch);
  if (ti.nbytes() == 0) return at::empty(ti.shape, options);
  auto* ptr = static_cast<uint8_t*>(mapping_->addr) + data_start_ + ti.begin;
  if (reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(desc->size) != 0) {
    at::Tensor out = at::empty(ti.shape, options);
    std::memcpy(out.data_ptr(), ptr, ti.nbytes());
    return out;
  }
  std::shared_ptr<Mapping> keep = mapping_;
  return at::from_blob(ptr, ti.shape, [keep](void*) {}, options);
}

const uint8_t* SafetensorsFile::mapped_data() const { return static_cast<const uint8_t*>(mapping_->addr); }
std::size_t SafetensorsFile::mapped_size() const { return mapping_->size; }

bool is_fp8_dtype(const std::string& dtype) { return dtype == "F8_E4M3" || dtype == "F8_E5M2"; }

namespace {
// Value of an fp8 byte with `exp_bits` exponent bits; `fn` = E4M3FN (no infinities, only
// S.1111.111 is NaN).
float decode_fp8(uint8_t b, int exp_bits, bool fn) {
  const int man_bits = 7 - exp_bits;
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int e = (b >> man_bits) & ((1 << exp_bits) - 1);
  const int m = b & ((1 << man_bits) - 1);
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int e_max = (1 << exp_bits) - 1;
  if (fn) {
    if (e == e_max && m == (1 << man_bits) - 1) return std::numeric_limits<float>::quiet_NaN();
  } else if (e == e_max) {
    return m == 0 ? sign * std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  }
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), 1 - bias - man_bits);  // subnormal
  return sign * std::ldexp(static_cast<float>((1 << man_bits) | m), e - bias - man_bits);
}
}  // namespace

at::Tensor fp8_to_float32(const at::Tensor& bytes, const std::string& dtype) {
  if (!is_fp8_dtype(dtype)) throw ComfyError("ValueError", "fp8_to_float32: '" + dtype + "' is not an fp8 dtype");
  if (bytes.scalar_type() != at::kByte)
    throw ComfyError("TypeError", "fp8_to_float32: expected the uint8 bytes of an fp8 tensor");
  std::array<float, 256> lut{};
  const bool e4m3 = dtype == "F8_E4M3";
  for (int i = 0; i < 256; ++i) lut[i] = decode_fp8(static_cast<uint8_t>(i), e4m3 ? 4 : 5, e4m3);
  at::Tensor src = bytes.cpu().contiguous();
  at::Tensor out = at::empty(src.sizes(), at::TensorOptions().dtype(at::kFloat));
  const uint8_t* in = src.data_ptr<uint8_t>();
  float* o = out.data_ptr<float>();
  const int64_t count = src.numel();
  for (int64_t i = 0; i < count; ++i) o[i] = lut[in[i]];
  return out.to(bytes.device());
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors, const json& metadata) {
  if (!metadata.is_null()) {
    if (!metadata.is_object()) throw ComfyError("ValueError", "safetensors metadata must be an object of strings");
    for (auto& [k, v] : metadata.items())
      if (!v.is_string())
        throw ComfyError("ValueError", "safetensors metadata value of '" + k + "' must be a string");
  }
  struct Item {
    const std::string* name;
    const DtypeDesc* desc;
    at::Tensor data;  // contiguous, on the CPU
  };
  std::vector<Item> items;
  std::unordered_set<std::string> names;
  for (const auto& [name, t] : tensors) {
    if (!names.insert(name).second) throw ComfyError("ValueError", "duplicate tensor name '" + name + "'");
    const DtypeDesc* desc = t.defined() ? dtype_for_save(t.scalar_type()) : nullptr;
    if (!desc)
      throw ComfyError("ValueError", "tensor '" + name + "' has a dtype safetensors cannot store");
    items.push_back({&name, desc, t.detach().cpu().contiguous()});
  }
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.desc->rank != b.desc->rank) return a.desc->rank > b.desc->rank;
    return *a.name < *b.name;
  });

  json header = json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& it : items) {
    const uint64_t n = static_cast<uint64_t>(it.data.numel()) * static_cast<uint64_t>(it.desc->size);
    json shape = json::array();
    for (int64_t d : it.data.sizes()) shape.push_back(d);
    header[*it.name] = json{{"dtype", it.desc->name}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>((uint64_t{text.size()} >> (8 * i)) & 0xff);

  // Atomic replace: a uniquely named file beside the target, then rename.
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::random_device rd;
  std::filesystem::path tmp;
  Fd f;
  for (int attempt = 0; attempt < 16 && f.fd < 0; ++attempt) {
    std::string name(1, '.');
    name += path.filename().string();
    name += ".tmp" + std::to_string(::getpid()) + "_" + std::to_string(rd());
    tmp = dir / name;
    f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (f.fd < 0 && errno != EEXIST) fail_os("cannot create file", tmp, errno);
  }
  if (f.fd < 0) fail_os("cannot create file", tmp, EEXIST);
  bool ok = write_all(f.fd, len_bytes, 8) && write_all(f.fd, text.data(), text.size());
  for (const auto& it : items) {
    if (!ok) break;
    const std::size_t n = static_cast<std::size_t>(it.data.numel()) * static_cast<std::size_t>(it.desc->size);
    if (n > 0) ok = write_all(f.fd, it.data.data_ptr(), n);
  }
  int err = ok ? 0 : errno;
  if (ok && ::fsync(f.fd) != 0) ok = false, err = errno;
  if (::close(f.fd) != 0 && ok) ok = false, err = errno;
  f.fd = -1;
  if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) ok = false, err = errno;
  if (!ok) {
    ::unlink(tmp.c_str());
    fail_os("cannot write safetensors file", path, err ? err : EIO);
  }
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) ::fsync(d.fd);
}

}  // namespace comfy
