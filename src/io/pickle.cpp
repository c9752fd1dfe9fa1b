#include "io/pickle.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "io/zip_reader.h"

namespace comfy::io {

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// The mapped file.

struct Mapping {
  void* addr = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (addr != nullptr && addr != MAP_FAILED) munmap(addr, size);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr); }
};

std::shared_ptr<Mapping> map_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw ComfyError(err == ENOENT ? "FileNotFoundError" : "OSError",
                     "[Errno " + std::to_string(err) + "] " + std::strerror(err) + ": '" + path.string() + "'");
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ComfyError("OSError", "cannot read " + path.string() + ": not a regular file");
  }
  auto m = std::make_shared<Mapping>();
  m->size = static_cast<std::size_t>(st.st_size);
  if (m->size > 0) {
    m->addr = mmap(nullptr, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw ComfyError("OSError", "cannot map " + path.string() + ": " + std::strerror(err));
    }
  }
  ::close(fd);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Python values, as far as checkpoints need them.

enum class Kind { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Set, Global, Storage, Tensor };

struct StorageRef {
  std::string key;           // root storage key (zip: data/<key>; legacy: position in the key list)
  at::ScalarType dtype = at::kFloat;
  int64_t elem_offset = 0;   // legacy storage views: offset into the root storage
  int64_t numel = 0;
};

struct TensorSpec {
  std::shared_ptr<StorageRef> storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

struct Obj;
using Ref = std::shared_ptr<Obj>;

struct Obj {
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str, Bytes, BigInt (little-endian two's complement bytes), Global ("module.name")
  std::vector<Ref> items;                  // Tuple, List, Set
  std::vector<std::pair<Ref, Ref>> dict;   // Dict, in insertion order
  std::shared_ptr<StorageRef> storage;
  std::shared_ptr<TensorSpec> tensor;
};

Ref make(Kind k) {
  auto o = std::make_shared<Obj>();
  o->kind = k;
  return o;
}
Ref make_int(int64_t v) {
  Ref o = make(Kind::Int);
  o->i = v;
  return o;
}
Ref make_str(Kind k, std::string s) {
  Ref o = make(k);
  o->s = std::move(s);
  return o;
}

// The storage types torch.save names, and their element types.
const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> t = {
      {"torch.FloatStorage", at::kFloat},     {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},       {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},       {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},     {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},       {"torch.BoolStorage", at::kBool},
      {"torch.ComplexFloatStorage", at::kComplexFloat}, {"torch.ComplexDoubleStorage", at::kComplexDouble},
  };
  return t;
}

// Every global a checkpoint may name. Nothing else is ever resolved.
bool allowed_global(const std::string& name) {
  static const std::set<std::string> allowed = {
      "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",  "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
      "collections.OrderedDict",         "torch.Size",                    "_codecs.encode",
      "torch.nn.parameter.Parameter",    "torch.Tensor",
  };
  return allowed.count(name) != 0 || storage_types().count(name) != 0;
}

// ---------------------------------------------------------------------------------------------
// The unpickler: a stack machine over protocol 0-5 opcodes, without any code execution.

class Unpickler {
 public:
  using PersistentLoad = std::function<Ref(const Ref& pid)>;
  Unpickler(const uint8_t* data, std::size_t size, const std::string& file, PersistentLoad persistent)
      : p_(data), size_(size), file_(file), persistent_(std::move(persistent)) {}

  // Reads one pickle starting at `pos`; returns its value and leaves pos() after its STOP.
  Ref load(std::size_t start) {
    pos_ = start;
    stack_.clear();
    marks_.clear();
    memo_.clear();
    for (;;) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;             // PROTO
        case 0x95: bytes(8); break;           // FRAME: its length only groups opcodes
        case '.': {                           // STOP
          if (stack_.empty()) corrupt("STOP with an empty stack");
          return stack_.back();
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': push(top()); break;
        case 'N': push(make(Kind::None)); break;
        case 0x88: case 0x89: {
          Ref o = make(Kind::Bool);
          o->b = op == 0x88;
          push(o);
          break;
        }
        case 'J': push(make_int(static_cast<int32_t>(uint_le(4)))); break;
        case 'K': push(make_int(static_cast<int64_t>(uint_le(1)))); break;
        case 'M': push(make_int(static_cast<int64_t>(uint_le(2)))); break;
        case 0x8a: push(long_bytes(uint_le(1))); break;
        case 0x8b: push(long_bytes(uint_le(4))); break;
        case 'I': {
          std::string line = readline();
          if (line == "01" || line == "00") {
            Ref o = make(Kind::Bool);
            o->b = line == "01";
            push(o);
          } else {
            push(make_int(parse_int(line)));
          }
          break;
        }
        case 'G': {
          uint64_t bits = 0;
          for (uint8_t c : bytes(8)) bits = (bits << 8) | c;  // big-endian
          Ref o = make(Kind::Float);
          std::memcpy(&o->f, &bits, 8);
          push(o);
          break;
        }
        case 'F': {
          std::string line = readline();
          Ref o = make(Kind::Float);
          o->f = std::strtod(line.c_str(), nullptr);
          push(o);
          break;
        }
        case 'X': push(make_str(Kind::Str, as_string(bytes(uint_le(4))))); break;
        case 0x8c: push(make_str(Kind::Str, as_string(bytes(uint_le(1))))); break;
        case 0x8d: push(make_str(Kind::Str, as_string(bytes(uint_le(8))))); break;
        case 'T': push(make_str(Kind::Str, as_string(bytes(uint_le(4))))); break;  // py2 str
        case 'U': push(make_str(Kind::Str, as_string(bytes(uint_le(1))))); break;
        case 'B': push(make_str(Kind::Bytes, as_string(bytes(uint_le(4))))); break;
        case 'C': push(make_str(Kind::Bytes, as_string(bytes(uint_le(1))))); break;
        case 0x8e: push(make_str(Kind::Bytes, as_string(bytes(uint_le(8))))); break;
        case ')': push(make(Kind::Tuple)); break;
        case 't': {
          Ref o = make(Kind::Tuple);
          o->items = pop_mark();
          push(o);
          break;
        }
        case 0x85: case 0x86: case 0x87: {
          const std::size_t n = op - 0x84;
          if (stack_.size() < n + base()) corrupt("TUPLE with too few items");
          Ref o = make(Kind::Tuple);
          o->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(o);
          break;
        }
        case ']': push(make(Kind::List)); break;
        case 'l': {
          Ref o = make(Kind::List);
          o->items = pop_mark();
          push(o);
          break;
        }
        case 'a': {
          Ref v = pop();
          Ref l = top();
          if (l->kind != Kind::List) corrupt("APPEND to a non-list");
          l->items.push_back(v);
          break;
        }
        case 'e': {
          std::vector<Ref> v = pop_mark();
          Ref l = top();
          if (l->kind != Kind::List) corrupt("APPENDS to a non-list");
          l->items.insert(l->items.end(), v.begin(), v.end());
          break;
        }
        case '}': push(make(Kind::Dict)); break;
        case 'd': {
          std::vector<Ref> v = pop_mark();
          Ref o = make(Kind::Dict);
          set_items(o, v);
          push(o);
          break;
        }
        case 's': {
          Ref v = pop();
          Ref k = pop();
          set_items(top(), {k, v});
          break;
        }
        case 'u': {
          std::vector<Ref> v = pop_mark();
          set_items(top(), v);
          break;
        }
        case 0x8f: push(make(Kind::Set)); break;
        case 0x90: {
          std::vector<Ref> v = pop_mark();
          Ref s = top();
          if (s->kind != Kind::Set) corrupt("ADDITEMS to a non-set");
          s->items.insert(s->items.end(), v.begin(), v.end());
          break;
        }
        case 0x91: {
          Ref o = make(Kind::Set);
          o->items = pop_mark();
          push(o);
          break;
        }
        case 'p': memo_[static_cast<uint64_t>(parse_int(readline()))] = top(); break;
        case 'q': memo_[uint_le(1)] = top(); break;
        case 'r': memo_[uint_le(4)] = top(); break;
        case 0x94: memo_[memo_.size()] = top(); break;
        case 'g': push(memo_get(static_cast<uint64_t>(parse_int(readline())))); break;
        case 'h': push(memo_get(uint_le(1))); break;
        case 'j': push(memo_get(uint_le(4))); break;
        case 'c': {
          std::string module = readline();
          std::string name = readline();
          push(global(module, name));
          break;
        }
        case 0x93: {
          Ref name = pop();
          Ref module = pop();
          if (name->kind != Kind::Str || module->kind != Kind::Str) corrupt("STACK_GLOBAL without strings");
          push(global(module->s, name->s));
          break;
        }
        case 'Q': {
          Ref pid = pop();
          push(persistent_(pid));
          break;
        }
        case 'P': corrupt("text persistent ids are not used by torch.save");
        case 'R': {
          Ref args = pop();
          Ref fn = pop();
          push(call(fn, args));
          break;
        }
        case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
          Ref args = pop();
          Ref cls = pop();
          push(call(cls, args));
          break;
        }
        case 'b': {  // BUILD: tensors (Parameter state) and dicts ignore their state
          pop();
          Ref o = top();
          if (o->kind != Kind::Tensor && o->kind != Kind::Dict) corrupt("BUILD on an unexpected object");
          break;
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          throw ComfyError("UnpicklingError", "cannot load " + file_ + ": unsupported pickle opcode " + hex + " at byte " +
                                                  std::to_string(pos_ - 1) +
                                                  " (only what torch.save writes is read; nothing was executed)");
        }
      }
    }
  }

  std::size_t pos() const { return pos_; }

 private:
  const uint8_t* p_;
  std::size_t size_;
  std::size_t pos_ = 0;
  const std::string& file_;
  PersistentLoad persistent_;
  std::vector<Ref> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;

  [[noreturn]] void corrupt(const std::string& why) const {
    throw ComfyError("UnpicklingError", "cannot load " + file_ + ": corrupt pickle (" + why + " at byte " +
                                            std::to_string(pos_) + ")");
  }
  uint8_t byte() {
    if (pos_ >= size_) corrupt("unexpected end of data");
    return p_[pos_++];
  }
  std::vector<uint8_t> bytes(uint64_t n) {
    if (n > size_ - pos_) corrupt("a length past the end of the data");
    std::vector<uint8_t> v(p_ + pos_, p_ + pos_ + n);
    pos_ += n;
    return v;
  }
  static std::string as_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
  uint64_t uint_le(int n) {
    if (static_cast<std::size_t>(n) > size_ - pos_) corrupt("unexpected end of data");
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | p_[pos_ + i];
    pos_ += n;
    return v;
  }
  std::string readline() {
    std::size_t start = pos_;
    while (pos_ < size_ && p_[pos_] != '\n') ++pos_;
    if (pos_ >= size_) corrupt("unterminated line");
    std::string s(reinterpret_cast<const char*>(p_ + start), pos_ - start);
    ++pos_;
    return s;
  }
  int64_t parse_int(const std::string& s) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || errno != 0 || (*end != '\0' && *end != 'L')) corrupt("bad integer '" + s + "'");
    return v;
  }
  Ref long_bytes(uint64_t n) {
    std::vector<uint8_t> b = bytes(n);
    if (n <= 8) {
      uint64_t v = 0;
      for (uint64_t i = n; i-- > 0;) v = (v << 8) | b[i];
      if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      return make_int(static_cast<int64_t>(v));
    }
    return make_str(Kind::BigInt, as_string(b));
  }
  std::size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Ref o) { stack_.push_back(std::move(o)); }
  Ref pop() {
    if (stack_.size() <= base()) corrupt("pop from an empty stack");
    Ref o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  const Ref& top() {
    if (stack_.size() <= base()) corrupt("empty stack");
    return stack_.back();
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) corrupt("no MARK on the stack");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> v(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return v;
  }
  Ref memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) corrupt("memo key " + std::to_string(i) + " not set");
    return it->second;
  }
  void set_items(const Ref& d, const std::vector<Ref>& kv) {
    if (d->kind != Kind::Dict) corrupt("SETITEM on a non-dict");
    if (kv.size() % 2 != 0) corrupt("odd number of dict items");
    for (std::size_t i = 0; i < kv.size(); i += 2) {
      bool replaced = false;
      if (kv[i]->kind == Kind::Str || kv[i]->kind == Kind::Int) {
        for (auto& [k, v] : d->dict) {
          if (k->kind == kv[i]->kind && k->s == kv[i]->s && k->i == kv[i]->i) {
            v = kv[i + 1];
            replaced = true;
            break;
          }
        }
      }
      if (!replaced) d->dict.emplace_back(kv[i], kv[i + 1]);
    }
  }

  Ref global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    if (!allowed_global(full)) {
      throw ComfyError("UnpicklingError",
                       "cannot load " + file_ + ": the pickle calls the global '" + full +
                           "', which a model file has no reason to use; only PyTorch's tensor-rebuild globals are "
                           "allowed, so the file was refused without running anything (convert it to .safetensors "
                           "only if you trust where it came from)");
    }
    return make_str(Kind::Global, full);
  }

  const Ref& arg(const Ref& args, std::size_t i, const std::string& fn) {
    if (args->kind != Kind::Tuple || args->items.size() <= i) corrupt(fn + " called with too few arguments");
    return args->items[i];
  }
  std::vector<int64_t> int_tuple(const Ref& o, const std::string& what) {
    if (o->kind != Kind::Tuple && o->kind != Kind::List) corrupt(what + " is not a tuple");
    std::vector<int64_t> v;
    for (const Ref& x : o->items) {
      if (x->kind != Kind::Int) corrupt(what + " holds a non-integer");
      v.push_back(x->i);
    }
    return v;
  }

  Ref rebuild_tensor(const Ref& args, const std::string& fn) {
    const Ref& storage = arg(args, 0, fn);
    if (storage->kind != Kind::Storage) corrupt(fn + " without a storage");
    const Ref& offset = arg(args, 1, fn);
    if (offset->kind != Kind::Int) corrupt(fn + " with a non-integer offset");
    auto spec = std::make_shared<TensorSpec>();
    spec->storage = storage->storage;
    spec->offset = offset->i;
    spec->size = int_tuple(arg(args, 2, fn), "the tensor size");
    spec->stride = int_tuple(arg(args, 3, fn), "the tensor stride");
    if (spec->size.size() != spec->stride.size()) corrupt("tensor size and stride of different lengths");
    Ref o = make(Kind::Tensor);
    o->tensor = spec;
    return o;
  }

  Ref call(const Ref& fn, const Ref& args) {
    if (fn->kind != Kind::Global) corrupt("call of a non-callable object");
    if (args->kind != Kind::Tuple) corrupt("call arguments are not a tuple");
    const std::string& name = fn->s;
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      return rebuild_tensor(args, name);
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      const Ref& data = arg(args, 0, name);
      if (data->kind != Kind::Tensor) corrupt(name + " of a non-tensor");
      return data;
    }
    if (name == "torch._tensor._rebuild_from_type_v2") {  // (func, new_type, args, state)
      return call(arg(args, 0, name), arg(args, 2, name));
    }
    if (name == "collections.OrderedDict") {
      Ref d = make(Kind::Dict);
      if (!args->items.empty()) {
        const Ref& pairs = args->items[0];
        if (pairs->kind != Kind::List && pairs->kind != Kind::Tuple) corrupt("OrderedDict of a non-sequence");
        for (const Ref& kv : pairs->items) {
          if ((kv->kind != Kind::Tuple && kv->kind != Kind::List) || kv->items.size() != 2) corrupt("OrderedDict item");
          set_items(d, {kv->items[0], kv->items[1]});
        }
      }
      return d;
    }
    if (name == "torch.Size") {
      Ref t = make(Kind::Tuple);
      if (!args->items.empty()) t->items = args->items[0]->items;
      return t;
    }
    if (name == "_codecs.encode") {  // bytes pickled by protocol 2: _codecs.encode(text, 'latin1')
      const Ref& text = arg(args, 0, name);
      if (text->kind != Kind::Str) corrupt("_codecs.encode of a non-string");
      std::string enc = args->items.size() > 1 && args->items[1]->kind == Kind::Str ? args->items[1]->s : "utf-8";
      std::transform(enc.begin(), enc.end(), enc.begin(), [](unsigned char c) { return std::tolower(c); });
      if (enc != "latin1" && enc != "latin-1" && enc != "iso-8859-1") return make_str(Kind::Bytes, text->s);
      std::string out;  // UTF-8 code points below 256 -> one byte each
      const std::string& s = text->s;
      for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
          out.push_back(static_cast<char>(c));
        } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3) {
          out.push_back(static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F)));
          ++i;
        } else {
          corrupt("_codecs.encode of a character outside latin-1");
        }
      }
      return make_str(Kind::Bytes, out);
    }
    corrupt("'" + name + "' is not callable here");
  }
};

// ---------------------------------------------------------------------------------------------
// torch.save layouts.

// ('storage', storage_type, key, location, numel[, view_metadata]) -> a Storage value.
struct StorageTable {
  const std::string& file;
  std::map<std::string, std::shared_ptr<StorageRef>> roots;

  Ref load(const Ref& pid) {
    auto bad = [&](const std::string& why) -> Ref {
      throw ComfyError("UnpicklingError", "cannot load " + file + ": bad storage reference (" + why + ")");
    };
    if (pid->kind != Kind::Tuple || pid->items.size() < 5) return bad("not a 5-tuple");
    const auto& it = pid->items;
    if (it[0]->kind != Kind::Str || it[0]->s != "storage") return bad("not a storage");
    if (it[1]->kind != Kind::Global) return bad("no storage type");
    auto type = storage_types().find(it[1]->s);
    if (type == storage_types().end()) return bad("unknown storage type " + it[1]->s);
    if (it[2]->kind != Kind::Str) return bad("key is not a string");
    if (it[4]->kind != Kind::Int || it[4]->i < 0) return bad("bad element count");
    auto& root = roots[it[2]->s];
    if (!root) {
      root = std::make_shared<StorageRef>();
      root->key = it[2]->s;
      root->dtype = type->second;
      root->numel = it[4]->i;
    } else if (root->dtype != type->second) {
      return bad("storage " + it[2]->s + " used with two dtypes");
    }
    Ref o = make(Kind::Storage);
    o->storage = root;
    if (it.size() > 5 && it[5]->kind == Kind::Tuple) {  // legacy view: (view_key, offset, size)
      const auto& v = it[5]->items;
      if (v.size() != 3 || v[1]->kind != Kind::Int || v[2]->kind != Kind::Int) return bad("bad storage view");
      auto view = std::make_shared<StorageRef>(*root);
      view->elem_offset = v[1]->i;
      view->numel = v[2]->i;
      if (view->elem_offset < 0 || view->numel < 0 || view->elem_offset + view->numel > root->numel) {
        return bad("storage view out of range");
      }
      o->storage = view;
    }
    return o;
  }
};

// A tensor of the root storage's full extent: a view of the mapping when aligned, else a copy.
at::Tensor storage_tensor(const std::shared_ptr<Mapping>& map, uint64_t offset, uint64_t nbytes, const StorageRef& s,
                          const std::string& file) {
  const int64_t elem = static_cast<int64_t>(c10::elementSize(s.dtype));
  if (s.numel > 0 && static_cast<uint64_t>(s.numel) > nbytes / static_cast<uint64_t>(elem)) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": storage " + s.key + " claims " + std::to_string(s.numel) +
                                         " elements but holds " + std::to_string(nbytes) + " bytes (truncated file?)");
  }
  const uint8_t* ptr = map->data() + offset;
  auto options = at::TensorOptions().dtype(s.dtype);
  if (reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(elem) == 0) {
    return at::from_blob(const_cast<uint8_t*>(ptr), {s.numel}, [map](void*) {}, options);
  }
  at::Tensor copy = at::empty({s.numel}, options);
  std::memcpy(copy.data_ptr(), ptr, static_cast<std::size_t>(s.numel * elem));
  return copy;
}

at::Tensor materialize(const TensorSpec& t, const std::map<std::string, at::Tensor>& bases, const std::string& file,
                       const std::string& name) {
  auto it = bases.find(t.storage->key);
  if (it == bases.end()) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": tensor '" + name + "' uses storage " + t.storage->key +
                                         ", which the file does not contain");
  }
  const int64_t offset = t.storage->elem_offset + t.offset;
  int64_t extent = 1;  // one past the last element used
  bool empty = false;
  for (std::size_t d = 0; d < t.size.size(); ++d) {
    if (t.size[d] < 0 || t.stride[d] < 0) {
      throw ComfyError("RuntimeError", "cannot load " + file + ": tensor '" + name + "' has a negative size or stride");
    }
    if (t.size[d] == 0) empty = true;
    int64_t span = 0;
    if (t.size[d] > 0 && (__builtin_mul_overflow(t.size[d] - 1, t.stride[d], &span) ||
                          __builtin_add_overflow(extent, span, &extent))) {
      extent = INT64_MAX;  // reported as out of range below
    }
  }
  const int64_t limit = t.storage->elem_offset + t.storage->numel;
  int64_t end = 0;
  if (offset < 0 || (!empty && (__builtin_add_overflow(offset, extent, &end) || end > limit))) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": tensor '" + name +
                                         "' reaches past the end of its storage (corrupt file)");
  }
  if (empty) return at::empty(t.size, it->second.options());
  return it->second.as_strided(t.size, t.stride, offset);
}

// ComfyUI's load_torch_file: "state_dict" when present, else the only value if it is a dict.
const Obj* unwrap(const Obj& top, const Obj** outer_extra) {
  *outer_extra = nullptr;
  for (const auto& [k, v] : top.dict) {
    if (k->kind == Kind::Str && k->s == "state_dict" && v->kind == Kind::Dict) {
      *outer_extra = &top;
      return v.get();
    }
  }
  if (top.dict.size() == 1 && top.dict[0].second->kind == Kind::Dict) return top.dict[0].second.get();
  return &top;
}

std::string key_text(const Obj& k) {
  if (k.kind == Kind::Str) return k.s;
  if (k.kind == Kind::Int) return std::to_string(k.i);
  return "?";
}

struct Flattener {
  const std::map<std::string, at::Tensor>& bases;
  const std::string& file;
  PickleCheckpoint& out;

  void walk(const Obj& d, const std::string& prefix, int depth, bool tensors_only) {
    if (depth > 64) throw ComfyError("RuntimeError", "cannot load " + file + ": dicts nested too deeply");
    for (const auto& [k, v] : d.dict) {
      const std::string name = prefix + key_text(*k);
      switch (v->kind) {
        case Kind::Tensor:
          if (!tensors_only) out.tensors.emplace_back(name, materialize(*v->tensor, bases, file, name));
          break;
        case Kind::Dict:
          if (!tensors_only) walk(*v, name + ".", depth + 1, false);
          break;
        case Kind::Int: out.extra[name] = v->i; break;
        case Kind::Float: out.extra[name] = v->f; break;
        case Kind::Bool: out.extra[name] = v->b; break;
        case Kind::Str: out.extra[name] = v->s; break;
        default: break;
      }
    }
  }
};

void collect(const Ref& top, const std::map<std::string, at::Tensor>& bases, const std::string& file,
             PickleCheckpoint& out) {
  if (top->kind != Kind::Dict) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": the checkpoint does not hold a dict of tensors");
  }
  const Obj* outer = nullptr;
  const Obj* sd = unwrap(*top, &outer);
  Flattener f{bases, file, out};
  if (outer != nullptr) f.walk(*outer, "", 0, /*tensors_only=*/true);  // plain values next to state_dict
  f.walk(*sd, "", 0, false);
}

PickleCheckpoint load_zip(const std::shared_ptr<Mapping>& map, const std::string& file) {
  const std::vector<ZipEntry> entries = read_zip_entries(map->data(), map->size, file);
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : entries) {
    if (e.name == "data.pkl" || (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0)) {
      pkl = &e;
      break;
    }
  }
  if (pkl == nullptr) throw ComfyError("RuntimeError", "cannot load " + file + ": a zip file without data.pkl is not a PyTorch checkpoint");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);
  std::map<std::string, const ZipEntry*> by_name;
  for (const ZipEntry& e : entries) by_name[e.name] = &e;
  if (auto bo = by_name.find(prefix + "byteorder"); bo != by_name.end()) {
    std::string order(reinterpret_cast<const char*>(map->data() + bo->second->data_offset), bo->second->size);
    if (order != "little") throw ComfyError("RuntimeError", "cannot load " + file + ": big-endian checkpoints are not supported");
  }
  StorageTable table{file, {}};
  Unpickler u(map->data() + pkl->data_offset, pkl->size, file, [&](const Ref& pid) { return table.load(pid); });
  Ref top = u.load(0);
  std::map<std::string, at::Tensor> bases;
  for (const auto& [key, s] : table.roots) {
    auto e = by_name.find(prefix + "data/" + key);
    if (e == by_name.end()) {
      throw ComfyError("RuntimeError", "cannot load " + file + ": storage data/" + key + " is missing from the archive");
    }
    bases[key] = storage_tensor(map, e->second->data_offset, e->second->size, *s, file);
  }
  PickleCheckpoint out;
  out.format = "zip";
  collect(top, bases, file, out);
  return out;
}

PickleCheckpoint load_legacy(const std::shared_ptr<Mapping>& map, const std::string& file) {
  const uint8_t* data = map->data();
  const std::size_t size = map->size;
  StorageTable table{file, {}};
  auto no_storage = [&](const Ref&) -> Ref {
    throw ComfyError("UnpicklingError", "cannot load " + file + ": unexpected persistent id in a header pickle");
  };
  Unpickler header(data, size, file, no_storage);
  Ref magic = header.load(0);
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);  // 0x1950a86a20f9469cfc6c
  if (magic->kind != Kind::BigInt || magic->s != kMagic) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": not a PyTorch checkpoint (no torch.save magic number)");
  }
  Ref protocol = header.load(header.pos());
  if (protocol->kind != Kind::Int || protocol->i != 1001) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": unsupported torch.save protocol version");
  }
  Ref sys_info = header.load(header.pos());
  if (sys_info->kind == Kind::Dict) {
    for (const auto& [k, v] : sys_info->dict) {
      if (k->kind == Kind::Str && k->s == "little_endian" && v->kind == Kind::Bool && !v->b) {
        throw ComfyError("RuntimeError", "cannot load " + file + ": big-endian checkpoints are not supported");
      }
    }
  }
  Unpickler main(data, size, file, [&](const Ref& pid) { return table.load(pid); });
  Ref top = main.load(header.pos());
  Unpickler keys_pickle(data, size, file, no_storage);
  Ref keys = keys_pickle.load(main.pos());
  if (keys->kind != Kind::List) throw ComfyError("RuntimeError", "cannot load " + file + ": bad storage key list");
  std::size_t pos = keys_pickle.pos();
  std::map<std::string, at::Tensor> bases;
  for (const Ref& k : keys->items) {
    if (k->kind != Kind::Str) throw ComfyError("RuntimeError", "cannot load " + file + ": bad storage key");
    if (size - pos < 8) throw ComfyError("RuntimeError", "cannot load " + file + ": truncated storage data");
    uint64_t numel = 0;
    for (int i = 7; i >= 0; --i) numel = (numel << 8) | data[pos + i];
    pos += 8;
    auto s = table.roots.find(k->s);
    if (s == table.roots.end()) throw ComfyError("RuntimeError", "cannot load " + file + ": storage " + k->s + " is not used");
    const uint64_t elem = c10::elementSize(s->second->dtype);
    if (numel > (size - pos) / elem) throw ComfyError("RuntimeError", "cannot load " + file + ": truncated storage data");
    if (static_cast<int64_t>(numel) != s->second->numel) {
      throw ComfyError("RuntimeError", "cannot load " + file + ": storage " + k->s + " has an unexpected size");
    }
    bases[k->s] = storage_tensor(map, pos, numel * elem, *s->second, file);
    pos += numel * elem;
  }
  PickleCheckpoint out;
  out.format = "legacy";
  collect(top, bases, file, out);
  return out;
}

}  // namespace

bool is_pickle_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".ckpt" || ext == ".pt" || ext == ".pth" || ext == ".bin" || ext == ".pkl";
}

PickleCheckpoint load_pickle_checkpoint(const std::filesystem::path& path) {
  std::shared_ptr<Mapping> map = map_file(path);
  const std::string file = path.string();
  if (map->size == 0) throw ComfyError("RuntimeError", "cannot load " + file + ": the file is empty");
  if (looks_like_zip(map->data(), map->size)) return load_zip(map, file);
  if (map->size > 262 && std::memcmp(map->data() + 257, "ustar", 5) == 0) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": tar-format checkpoints (PyTorch before 0.4) are not supported");
  }
  if (map->data()[0] != 0x80) {
    throw ComfyError("RuntimeError", "cannot load " + file + ": not a PyTorch checkpoint (neither a zip archive nor a pickle)");
  }
  return load_legacy(map, file);
}

}  // namespace comfy::io
