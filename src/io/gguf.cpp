// The GGUF reader (gguf.h), written from ggml's docs/gguf.md. Every read goes through Cursor,
// which checks the bytes it needs against the end of the mapping first, and every count is
// checked against the smallest encoding its elements could have before anything is reserved.
#include "io/gguf.h"
#include "io/file_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>

#include "core/error.h"

static_assert(std::endian::native == std::endian::little, "GGUF stores little-endian data");

namespace comfy::io {

namespace {

constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS; the spec: "currently at most 4"
constexpr int kMaxArrayDepth = 8;        // arrays of arrays of ...
constexpr uint64_t kDefaultAlignment = 32;

[[noreturn]] void corrupt(const std::filesystem::path& path, const std::string& what) {
  throw ComfyError("ValueError", "corrupt GGUF file '" + path.string() + "': " + what);
}

struct TypeRow {
  uint32_t id;
  GgmlType t;
};
// ggml's type table (ggml.h enum ggml_type and the block layouts of ggml-common.h).
constexpr std::array<TypeRow, 32> kTypes{{
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},      {3, {"Q4_1", 32, 20}},
    {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},      {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 36}},
    {10, {"Q2_K", 256, 84}},    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},   {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},   {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},        {29, {"IQ1_M", 256, 56}},
    {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},   {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
}};

// Bytes of one value of a fixed-size metadata type; 0 for STRING and ARRAY.
uint64_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::BOOL: return 1;
    case GgufType::UINT16: case GgufType::INT16: return 2;
    case GgufType::UINT32: case GgufType::INT32: case GgufType::FLOAT32: return 4;
    case GgufType::UINT64: case GgufType::INT64: case GgufType::FLOAT64: return 8;
    default: return 0;
  }
}
// The fewest bytes a value of type `t` can take (a string: its length; an array: type + count).
uint64_t min_size(GgufType t) {
  if (t == GgufType::STRING) return 8;
  if (t == GgufType::ARRAY) return 12;
  return fixed_size(t);
}
bool known_type(uint32_t t) { return t <= 12; }

// `s` with every byte that is not part of well-formed UTF-8 replaced by U+FFFD, so that the
// JSON it goes into can always be printed.
std::string utf8_clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (std::size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok && len > 1) {  // overlong forms, surrogates and code points past U+10FFFF
      uint32_t cp = c & (0x7F >> len);
      for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::filesystem::path& path) : p_(base), size_(size), path_(path) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  void need(uint64_t n, const std::string& what) const {
    if (n > left()) {
      corrupt(path_, "the file ends inside " + what + " (at byte " + std::to_string(pos_) + ", " + std::to_string(n) +
                         " bytes needed, " + std::to_string(left()) + " left): truncated or not a GGUF file");
    }
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view string(const std::string& what) {
    const auto len = read<uint64_t>("the length of " + what);
    if (len > left()) {
      corrupt(path_, "the length of " + what + " (" + std::to_string(len) + " bytes, at byte " +
                         std::to_string(pos_ - 8) + ") is past the end of the file");
    }
    std::string_view s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  // Checks that `count` elements of at least `each` bytes fit in what is left.
  void check_count(uint64_t count, uint64_t each, const std::string& what) const {
    if (each > 0 && count > left() / each) {
      corrupt(path_, what + " (" + std::to_string(count) + ") cannot fit in the " + std::to_string(left()) +
                         " bytes left after byte " + std::to_string(pos_));
    }
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  const uint8_t* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::filesystem::path& path_;
};

json read_value(Cursor& c, GgufType type, const std::string& key, int depth, std::optional<GgufType>* element);

json read_scalar(Cursor& c, GgufType type, const std::string& what) {
  switch (type) {
    case GgufType::UINT8: return c.read<uint8_t>(what);
    case GgufType::INT8: return c.read<int8_t>(what);
    case GgufType::UINT16: return c.read<uint16_t>(what);
    case GgufType::INT16: return c.read<int16_t>(what);
    case GgufType::UINT32: return c.read<uint32_t>(what);
    case GgufType::INT32: return c.read<int32_t>(what);
    case GgufType::FLOAT32: return static_cast<double>(c.read<float>(what));
    case GgufType::UINT64: return c.read<uint64_t>(what);
    case GgufType::INT64: return c.read<int64_t>(what);
    case GgufType::FLOAT64: return c.read<double>(what);
    case GgufType::BOOL: {
      const auto b = c.read<uint8_t>(what);
      if (b > 1) corrupt(c.path(), what + " is a bool holding " + std::to_string(b) + " (only 0 and 1 are allowed)");
      return b == 1;
    }
    case GgufType::STRING: return utf8_clean(c.string(what));
    default: break;
  }
  corrupt(c.path(), what + " has an unknown type");
}

json read_value(Cursor& c, GgufType type, const std::string& key, int depth, std::optional<GgufType>* element) {
  const std::string what = "the value of '" + key + "'";
  if (type != GgufType::ARRAY) return read_scalar(c, type, what);
  if (depth >= kMaxArrayDepth) corrupt(c.path(), what + " nests arrays deeper than " + std::to_string(kMaxArrayDepth));
  const auto et = c.read<uint32_t>("the element type of " + what);
  if (!known_type(et)) corrupt(c.path(), what + " is an array of unknown type " + std::to_string(et));
  const auto etype = static_cast<GgufType>(et);
  if (element) *element = etype;
  const auto count = c.read<uint64_t>("the length of " + what);
  c.check_count(count, min_size(etype), "the length of the array " + what);
  json arr = json::array();
  arr.get_ref<json::array_t&>().reserve(std::min<uint64_t>(count, 1u << 16));  // a JSON value is 16 bytes
  for (uint64_t i = 0; i < count; ++i) {
    arr.push_back(etype == GgufType::ARRAY ? read_value(c, etype, key, depth + 1, nullptr) : read_scalar(c, etype, what));
  }
  return arr;
}

}  // namespace

std::string gguf_type_name(GgufType type, std::optional<GgufType> element) {
  static const char* names[] = {"uint8", "int8",   "uint16", "int16",  "uint32", "int32", "float32",
                                "bool",  "string", "array",  "uint64", "int64",  "float64"};
  const auto i = static_cast<uint32_t>(type);
  std::string n = i < 13 ? names[i] : "type " + std::to_string(i);
  if (type == GgufType::ARRAY && element) n += "[" + gguf_type_name(*element) + "]";
  return n;
}

std::optional<GgmlType> ggml_type(uint32_t id) {
  for (const auto& row : kTypes)
    if (row.id == id) return row.t;
  return std::nullopt;
}

std::string GgufTensorInfo::type_name() const {
  auto t = ggml_type(type);
  return t ? t->name : "type " + std::to_string(type);
}

std::vector<int64_t> GgufTensorInfo::shape() const {
  return std::vector<int64_t>(dims.rbegin(), dims.rend());
}

uint64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

struct GgufFile::Mapping : io::FileMapping {};

uint64_t GgufFile::file_size() const { return mapping_->size; }

bool is_gguf_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[4] = {};
  const bool ok = ::pread(fd, magic, 4, 0) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  ::close(fd);
  return ok;
}

std::shared_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw ComfyError(err == ENOENT ? "FileNotFoundError" : "OSError",
                     "[Errno " + std::to_string(err) + "] cannot open GGUF file: " + std::strerror(err) + ": '" +
                         path.string() + "'");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ComfyError("OSError", "cannot read GGUF file '" + path.string() + "': not a regular file");
  }
  auto file = std::shared_ptr<GgufFile>(new GgufFile());
  file->path_ = path;
  file->mapping_ = std::make_shared<Mapping>();
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < 24) {
    ::close(fd);
    corrupt(path, "it has " + std::to_string(size) + " bytes, fewer than a GGUF header (24)");
  }
  file->mapping_->size = size;
  file->mapping_->addr = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  const int map_err = errno;
  ::close(fd);
  if (file->mapping_->addr == MAP_FAILED) {
    throw ComfyError("OSError", "cannot map GGUF file '" + path.string() + "': " + std::strerror(map_err));
  }
  const auto* base = static_cast<const uint8_t*>(file->mapping_->addr);
  Cursor c(base, size, file->path_);

  if (std::memcmp(base, "GGUF", 4) != 0) {
    std::string got;
    for (int i = 0; i < 4; ++i) got += std::isprint(base[i]) ? std::string(1, static_cast<char>(base[i])) : "?";
    corrupt(path, "it does not start with the magic \"GGUF\" (it starts with \"" + got + "\"): not a GGUF file");
  }
  c.read<uint32_t>("the magic");
  file->version_ = c.read<uint32_t>("the version");
  if (file->version_ == 1) corrupt(path, "GGUF version 1 (32-bit counts) is not supported; convert the file to version 3");
  if (file->version_ != 2 && file->version_ != 3) {
    corrupt(path, "unknown GGUF version " + std::to_string(file->version_) + " (versions 2 and 3 are read)");
  }
  const auto n_tensors = c.read<uint64_t>("the tensor count");
  const auto n_kv = c.read<uint64_t>("the key-value count");
  c.check_count(n_kv, 8 + 4, "the key-value count");  // empty key + value type, at least
  c.check_count(n_tensors, 8 + 4 + 4 + 8, "the tensor count");

  file->kvs_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    GgufKeyValue kv;
    kv.key = utf8_clean(c.string("key " + std::to_string(i)));
    const auto t = c.read<uint32_t>("the type of '" + kv.key + "'");
    if (!known_type(t)) corrupt(path, "key '" + kv.key + "' has unknown value type " + std::to_string(t));
    kv.type = static_cast<GgufType>(t);
    kv.value = read_value(c, kv.type, kv.key, 0, &kv.element);
    if (kv.key == "general.alignment") {
      if (kv.type != GgufType::UINT32) corrupt(path, "general.alignment must be a uint32, not " + gguf_type_name(kv.type));
      const auto a = kv.value.get<uint64_t>();
      if (a == 0 || (a & (a - 1)) != 0) corrupt(path, "general.alignment " + std::to_string(a) + " is not a power of two");
      file->alignment_ = a;
    }
    file->kvs_.push_back(std::move(kv));
  }

  file->tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo ti;
    ti.name = std::string(c.string("the name of tensor " + std::to_string(i)));
    const std::string what = "tensor '" + utf8_clean(ti.name) + "'";
    const auto nd = c.read<uint32_t>("the dimension count of " + what);
    if (nd == 0 || nd > kMaxDims) {
      corrupt(path, what + " has " + std::to_string(nd) + " dimensions (1 to " + std::to_string(kMaxDims) + " allowed)");
    }
    uint64_t numel = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const auto dim = c.read<uint64_t>("the dimensions of " + what);
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim)) {
        corrupt(path, what + " has an absurd dimension " + std::to_string(dim));
      }
      numel *= dim;
      ti.dims.push_back(dim);
    }
    ti.type = c.read<uint32_t>("the type of " + what);
    const auto gt = ggml_type(ti.type);
    if (!gt) corrupt(path, what + " has unknown ggml type " + std::to_string(ti.type));
    if (ti.dims[0] % gt->block_size != 0) {
      corrupt(path, what + " has " + std::to_string(ti.dims[0]) + " elements per row, not a multiple of the " +
                        gt->name + " block size " + std::to_string(gt->block_size));
    }
    const uint64_t blocks = numel / gt->block_size;
    if (blocks > std::numeric_limits<uint64_t>::max() / gt->type_size) corrupt(path, what + " is absurdly large");
    ti.nbytes = blocks * gt->type_size;
    ti.offset = c.read<uint64_t>("the offset of " + what);
    if (ti.offset % file->alignment_ != 0) {
      corrupt(path, what + " starts at data offset " + std::to_string(ti.offset) + ", not a multiple of the alignment " +
                        std::to_string(file->alignment_));
    }
    if (!file->index_.emplace(ti.name, file->tensors_.size()).second) corrupt(path, "tensor name repeated: " + what);
    file->tensors_.push_back(std::move(ti));
  }

  const uint64_t end_of_infos = c.pos();
  file->data_offset_ = (end_of_infos + file->alignment_ - 1) / file->alignment_ * file->alignment_;
  if (!file->tensors_.empty() && file->data_offset_ > size) {
    corrupt(path, "the file ends before its tensor data (which starts at byte " + std::to_string(file->data_offset_) +
                      "): truncated");
  }
  const uint64_t data_size = size > file->data_offset_ ? size - file->data_offset_ : 0;
  for (const GgufTensorInfo& ti : file->tensors_) {
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset) {
      corrupt(path, "tensor '" + utf8_clean(ti.name) + "' (" + std::to_string(ti.nbytes) + " bytes at data offset " +
                        std::to_string(ti.offset) + ") ends past the end of the file (" + std::to_string(data_size) +
                        " data bytes): truncated");
    }
  }
  return file;
}

json GgufFile::metadata() const {
  json out = json::object();
  for (const GgufKeyValue& kv : kvs_) out[kv.key] = kv.value;
  return out;
}

const GgufKeyValue* GgufFile::find_key(const std::string& key) const {
  for (const GgufKeyValue& kv : kvs_)
    if (kv.key == key) return &kv;
  return nullptr;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufKeyValue* kv = find_key(key);
  return kv && kv->value.is_string() ? kv->value.get<std::string>() : "";
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view GgufFile::tensor_bytes(const std::string& name) const {
  const GgufTensorInfo* ti = find(name);
  if (!ti) throw ComfyError("KeyError", "no tensor '" + name + "' in GGUF file '" + path_.string() + "'");
  const auto* base = static_cast<const char*>(mapping_->addr);
  return std::string_view(base + data_offset_ + ti->offset, ti->nbytes);
}

at::Tensor GgufFile::tensor(const std::string& name) const {
  const std::string_view bytes = tensor_bytes(name);
  const GgufTensorInfo& ti = *find(name);
  std::optional<at::ScalarType> st;
  switch (ti.type) {
    case 0: st = at::kFloat; break;
    case 1: st = at::kHalf; break;
    case 24: st = at::kChar; break;
    case 25: st = at::kShort; break;
    case 26: st = at::kInt; break;
    case 27: st = at::kLong; break;
    case 28: st = at::kDouble; break;
    case 30: st = at::kBFloat16; break;
    default: break;
  }
  std::vector<int64_t> sizes = st ? ti.shape() : std::vector<int64_t>{static_cast<int64_t>(bytes.size())};
  const at::ScalarType dtype = st.value_or(at::kByte);
  void* data = const_cast<char*>(bytes.data());  // read-only mapping: views must never be written
  const auto elem = static_cast<uintptr_t>(c10::elementSize(dtype));
  if (reinterpret_cast<uintptr_t>(data) % elem != 0) {
    at::Tensor out = at::empty(sizes, at::TensorOptions().dtype(dtype));
    std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
    return out;
  }
  auto keep = mapping_;
  return at::from_blob(data, sizes, [keep](void*) mutable { keep.reset(); }, at::TensorOptions().dtype(dtype));
}

}  // namespace comfy::io
