#include "io/blake3.h"

#include <cstring>
#include <fstream>

#include "core/error.h"

namespace comfy::io {

namespace {

constexpr uint32_t kChunkStart = 1, kChunkEnd = 2, kParent = 4, kRoot = 8, kKeyedHash = 16;
constexpr uint32_t kDeriveKeyContext = 32, kDeriveKeyMaterial = 64;
constexpr std::size_t kBlockLen = 64, kChunkLen = 1024;

constexpr std::array<uint32_t, 8> kIV = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                                         0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};
constexpr std::array<int, 16> kPermutation = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline void g(std::array<uint32_t, 16>& v, int a, int b, int c, int d, uint32_t mx, uint32_t my) {
  v[a] = v[a] + v[b] + mx;
  v[d] = rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + my;
  v[d] = rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = rotr(v[b] ^ v[c], 7);
}

// The compression function: 7 rounds of column then diagonal G mixing, the message permuted
// between rounds; returns the full 16-word state (the first 8 words are the chaining value).
std::array<uint32_t, 16> compress(const std::array<uint32_t, 8>& cv, const std::array<uint32_t, 16>& block,
                                  uint64_t counter, uint32_t block_len, uint32_t flags) {
  std::array<uint32_t, 16> v = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
                                kIV[0], kIV[1], kIV[2], kIV[3],
                                static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), block_len, flags};
  std::array<uint32_t, 16> m = block;
  for (int round = 0; round < 7; ++round) {
    g(v, 0, 4, 8, 12, m[0], m[1]);
    g(v, 1, 5, 9, 13, m[2], m[3]);
    g(v, 2, 6, 10, 14, m[4], m[5]);
    g(v, 3, 7, 11, 15, m[6], m[7]);
    g(v, 0, 5, 10, 15, m[8], m[9]);
    g(v, 1, 6, 11, 12, m[10], m[11]);
    g(v, 2, 7, 8, 13, m[12], m[13]);
    g(v, 3, 4, 9, 14, m[14], m[15]);
    if (round < 6) {
      std::array<uint32_t, 16> p;
      for (int i = 0; i < 16; ++i) p[i] = m[kPermutation[i]];
      m = p;
    }
  }
  for (int i = 0; i < 8; ++i) {
    v[i] ^= v[i + 8];
    v[i + 8] ^= cv[i];
  }
  return v;
}

std::array<uint32_t, 16> words_le(const uint8_t* bytes) {
  std::array<uint32_t, 16> w;
  for (int i = 0; i < 16; ++i) {
    w[i] = static_cast<uint32_t>(bytes[4 * i]) | static_cast<uint32_t>(bytes[4 * i + 1]) << 8 |
           static_cast<uint32_t>(bytes[4 * i + 2]) << 16 | static_cast<uint32_t>(bytes[4 * i + 3]) << 24;
  }
  return w;
}

std::array<uint32_t, 8> first8(const std::array<uint32_t, 16>& s) {
  std::array<uint32_t, 8> cv;
  std::copy(s.begin(), s.begin() + 8, cv.begin());
  return cv;
}

}  // namespace

Blake3::Blake3() : Blake3(kIV, 0) {}

Blake3::Blake3(const std::array<uint32_t, 8>& key, uint32_t flags) : key_(key), flags_(flags) {
  chunk_.cv = key_;
  chunk_.flags = flags_;
}

Blake3 Blake3::keyed(const std::array<uint8_t, 32>& key) {
  uint8_t padded[64] = {};
  std::memcpy(padded, key.data(), 32);
  return Blake3(first8(words_le(padded)), kKeyedHash);
}

Blake3 Blake3::derive_key(const std::string& context) {
  Blake3 ctx(kIV, kDeriveKeyContext);
  ctx.update(context.data(), context.size());
  std::vector<uint8_t> key = ctx.finalize(32);
  uint8_t padded[64] = {};
  std::memcpy(padded, key.data(), 32);
  return Blake3(first8(words_le(padded)), kDeriveKeyMaterial);
}

Blake3::Output Blake3::chunk_output(const Chunk& c) const {
  uint8_t block[64] = {};
  std::memcpy(block, c.block.data(), c.block_len);
  uint32_t flags = c.flags | kChunkEnd | (c.blocks_compressed == 0 ? kChunkStart : 0);
  return Output{c.cv, words_le(block), c.counter, static_cast<uint32_t>(c.block_len), flags};
}

Blake3::Output Blake3::parent_output(const std::array<uint32_t, 8>& left, const std::array<uint32_t, 8>& right) const {
  std::array<uint32_t, 16> block;
  std::copy(left.begin(), left.end(), block.begin());
  std::copy(right.begin(), right.end(), block.begin() + 8);
  return Output{key_, block, 0, static_cast<uint32_t>(kBlockLen), flags_ | kParent};
}

// Adds a finished chunk's chaining value; merges completed subtrees: after `total_chunks`
// chunks, as many merges as the count has trailing zero bits.
void Blake3::push_chunk_cv(std::array<uint32_t, 8> cv, uint64_t total_chunks) {
  while ((total_chunks & 1) == 0) {
    const Output o = parent_output(stack_.back(), cv);
    stack_.pop_back();
    cv = first8(compress(o.cv, o.block, o.counter, o.block_len, o.flags));
    total_chunks >>= 1;
  }
  stack_.push_back(cv);
}

void Blake3::update(const void* data, std::size_t size) {
  const auto* in = static_cast<const uint8_t*>(data);
  while (size > 0) {
    if (chunk_.len() == kChunkLen) {  // full chunk, and more input follows: it is not the root
      const Output o = chunk_output(chunk_);
      const auto cv = first8(compress(o.cv, o.block, o.counter, o.block_len, o.flags));
      const uint64_t total = chunk_.counter + 1;
      push_chunk_cv(cv, total);
      chunk_ = Chunk{};
      chunk_.cv = key_;
      chunk_.counter = total;
      chunk_.flags = flags_;
    }
    if (chunk_.block_len == kBlockLen) {  // full block, and more input follows
      const uint32_t flags = chunk_.flags | (chunk_.blocks_compressed == 0 ? kChunkStart : 0);
      chunk_.cv = first8(compress(chunk_.cv, words_le(chunk_.block.data()), chunk_.counter, kBlockLen, flags));
      ++chunk_.blocks_compressed;
      chunk_.block_len = 0;
    }
    const std::size_t take = std::min(kBlockLen - chunk_.block_len, size);
    std::memcpy(chunk_.block.data() + chunk_.block_len, in, take);
    chunk_.block_len += take;
    in += take;
    size -= take;
  }
}

std::vector<uint8_t> Blake3::finalize(std::size_t out_len) const {
  // The root: the current chunk's output, folded with the stack from the right.
  Output o = chunk_output(chunk_);
  for (std::size_t i = stack_.size(); i-- > 0;) {
    const auto cv = first8(compress(o.cv, o.block, o.counter, o.block_len, o.flags));
    o = parent_output(stack_[i], cv);
  }
  std::vector<uint8_t> out(out_len);
  uint64_t block_counter = 0;
  for (std::size_t pos = 0; pos < out_len; pos += 64, ++block_counter) {
    const auto words = compress(o.cv, o.block, block_counter, o.block_len, o.flags | kRoot);
    for (std::size_t i = 0; i < 64 && pos + i < out_len; ++i) {
      out[pos + i] = static_cast<uint8_t>(words[i / 4] >> (8 * (i % 4)));
    }
  }
  return out;
}

std::string Blake3::hex(std::size_t out_len) const {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : finalize(out_len)) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

std::string blake3_file_hex(const std::filesystem::path& path, const std::function<void(uint64_t)>& progress) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ComfyError("FileNotFoundError", "No such file: '" + path.string() + "'");
  Blake3 h;
  std::vector<char> buffer(1 << 20);
  uint64_t done = 0;
  while (file) {
    file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<std::size_t>(file.gcount());
    if (n > 0) {
      h.update(buffer.data(), n);
      done += n;
      if (progress) progress(done);
    }
  }
  if (file.bad()) throw ComfyError("OSError", "Could not read '" + path.string() + "'");
  return h.hex();
}

}  // namespace comfy::io
