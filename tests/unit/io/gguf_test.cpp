// The GGUF reader against files written by an independent writer (tools/fixtures/make_gguf.py,
// from the published spec, with the values it wrote in tests/fixtures/gguf/expected.json), hostile
// headers made by editing those bytes, and the tensor-data hash.
#include "io/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "io/tensor_hash.h"
#include "support/temp_files.h"

namespace fs = std::filesystem;
using comfy::test::TempDir;
using comfy::test::read_bytes;
using comfy::test::write_bytes;
using comfy::ComfyError;
using comfy::json;
using comfy::io::GgufFile;

namespace {

const fs::path kDir = fs::path(COMFY_TEST_DATA) / "gguf";

const json& expected() {
  static const json j = json::parse(read_bytes(kDir / "expected.json"));
  return j;
}

// The message of the ComfyError that opening `bytes` (written to `file`) as a GGUF file throws
// ("" when none).
std::string open_error_at(const fs::path& file, const std::string& bytes) {
  write_bytes(file, bytes);
  try {
    GgufFile::open(file);
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "ValueError") << e.what();
    return e.what();
  }
  return "";
}
std::string open_error(const std::string& bytes) {
  TempDir dir;
  return open_error_at(dir.path / "x.gguf", bytes);
}

void expect_matches_writer(const std::string& name) {
  SCOPED_TRACE(name);
  const json& want = expected()[name];
  auto f = GgufFile::open(kDir / name);
  EXPECT_EQ(f->version(), want["version"].get<uint32_t>());
  EXPECT_EQ(f->alignment(), want["alignment"].get<uint64_t>());
  EXPECT_EQ(f->data_offset(), want["data_offset"].get<uint64_t>());
  EXPECT_EQ(f->file_size(), want["size"].get<uint64_t>());
  ASSERT_EQ(f->key_values().size(), want["kv"].size());
  for (const auto& kv : f->key_values()) {
    ASSERT_TRUE(want["kv"].contains(kv.key)) << kv.key;
    EXPECT_EQ(comfy::io::gguf_type_name(kv.type, kv.element), want["kv"][kv.key]["type"]) << kv.key;
    EXPECT_EQ(kv.value, want["kv"][kv.key]["value"]) << kv.key;
  }
  ASSERT_EQ(f->tensors().size(), want["tensors"].size());
  for (std::size_t i = 0; i < f->tensors().size(); ++i) {
    const auto& t = f->tensors()[i];
    EXPECT_EQ(t.name, want["tensor_order"][i]);
    const json& w = want["tensors"][t.name];
    EXPECT_EQ(t.type_name(), w["type"]) << t.name;
    EXPECT_EQ(json(t.dims), w["dims"]) << t.name;
    EXPECT_EQ(t.offset, w["offset"].get<uint64_t>()) << t.name;
    EXPECT_EQ(t.nbytes, w["nbytes"].get<uint64_t>()) << t.name;
    EXPECT_EQ(comfy::io::sha256_hex(f->tensor_bytes(t.name)), w["sha256"]) << t.name;
  }
  EXPECT_EQ(comfy::io::tensor_data_sha256(kDir / name), want["tensors_sha256"]);
}

TEST(Gguf, Version2FileWithEveryValueTypeMatchesItsWriter) { expect_matches_writer("strings_v2.gguf"); }
TEST(Gguf, Version3UnetMatchesItsWriter) { expect_matches_writer("tiny_sd15_unet.gguf"); }
TEST(Gguf, RetaggedFileMatchesItsWriter) { expect_matches_writer("strings_v2_retagged.gguf"); }

TEST(Gguf, ArraysOfStringsAndInvalidUtf8) {
  auto f = GgufFile::open(kDir / "strings_v2.gguf");
  const json md = f->metadata();
  EXPECT_EQ(md["tokenizer.ggml.tokens"], json::parse(R"(["<s>", "</s>", "h\u00e9llo", "", "\u65e5\u672c", "a b c"])"));
  EXPECT_EQ(md["comfycpp.test.nested"], json::parse("[[1,2,3],[],[255]]"));
  EXPECT_EQ(md["comfycpp.test.u64"].get<uint64_t>(), (uint64_t{1} << 63) + 5);
  EXPECT_EQ(md["comfycpp.test.bad_utf8"], "bad\xEF\xBF\xBD\xEF\xBF\xBD" "bytes");
  EXPECT_NO_THROW((void)md.dump());
  EXPECT_EQ(f->get_string("general.architecture"), "t5encoder");
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(Gguf, TensorViewsAreZeroCopyInPyTorchOrder) {
  auto f = GgufFile::open(kDir / "strings_v2.gguf");
  at::Tensor emb = f->tensor("token_embd.weight");  // dims [4, 8] -> shape [8, 4]
  EXPECT_EQ(emb.sizes(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(emb.scalar_type(), at::kFloat);
  const std::string_view bytes = f->tensor_bytes("token_embd.weight");
  EXPECT_EQ(emb.data_ptr(), static_cast<const void*>(bytes.data()));
  at::Tensor pos = f->tensor("position_ids");
  EXPECT_EQ(pos.scalar_type(), at::kInt);
  EXPECT_TRUE(at::equal(pos, at::arange(5, at::kInt)));
  at::Tensor bf = f->tensor("output.weight");
  EXPECT_EQ(bf.scalar_type(), at::kBFloat16);
  EXPECT_EQ(bf.sizes(), (std::vector<int64_t>{4, 6}));
  at::Tensor q = f->tensor("blk.0.ffn_up.weight");  // Q4_0: raw blocks
  EXPECT_EQ(q.scalar_type(), at::kByte);
  EXPECT_EQ(q.numel(), 2 * 2 * 18);
  EXPECT_EQ(f->find("blk.0.ffn_up.weight")->shape(), (std::vector<int64_t>{2, 64}));
  at::Tensor kept = f->tensor("position_ids");
  f.reset();  // the view keeps the mapping alive
  EXPECT_EQ(kept[4].item<int>(), 4);
  EXPECT_THROW(GgufFile::open(kDir / "strings_v2.gguf")->tensor("nope"), ComfyError);
}

TEST(Gguf, UnetTensorTypes) {
  auto f = GgufFile::open(kDir / "tiny_sd15_unet.gguf");
  EXPECT_EQ(f->get_string("general.architecture"), "sd1");
  const auto* conv = f->find("input_blocks.0.0.weight");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->type_name(), "F16");
  EXPECT_EQ(conv->shape(), (std::vector<int64_t>{32, 4, 3, 3}));
  const auto* lin = f->find("input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
  ASSERT_NE(lin, nullptr);
  EXPECT_EQ(lin->type_name(), "Q8_0");
  EXPECT_EQ(lin->nbytes, 32u * (128 / 32) * 34);
}

TEST(Gguf, CorruptStringLengthIsRefused) {
  try {
    GgufFile::open(kDir / "corrupt_string_length.gguf");
    FAIL() << "opened";
  } catch (const ComfyError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("corrupt_string_length.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("past the end of the file"), std::string::npos) << msg;
  }
}

TEST(Gguf, EveryTruncationIsRefused) {
  const std::string good = read_bytes(kDir / "strings_v2.gguf");
  TempDir dir;
  // Every cut inside the fixed header, then one in every few bytes (each throw costs milliseconds
  // in a binary this size), and one byte short.
  for (std::size_t n = 0; n < good.size(); n += n < 64 ? 1 : 5) {
    EXPECT_NE(open_error_at(dir.path / "x.gguf", good.substr(0, n)), "") << "a prefix of " << n << " bytes opened";
  }
  EXPECT_NE(open_error_at(dir.path / "x.gguf", good.substr(0, good.size() - 1)), "");
}

TEST(Gguf, HostileHeadersAreRefused) {
  const std::string good = read_bytes(kDir / "strings_v2.gguf");
  auto patched = [&](std::size_t at, const void* v, std::size_t n) {
    std::string b = good;
    std::memcpy(b.data() + at, v, n);
    return b;
  };
  auto u32 = [](uint32_t v) { return v; };
  auto u64 = [](uint64_t v) { return v; };
  {
    std::string b = good;
    b[0] = 'X';
    EXPECT_NE(open_error(b).find("magic"), std::string::npos);
  }
  uint32_t v = u32(1);
  EXPECT_NE(open_error(patched(4, &v, 4)).find("version 1"), std::string::npos);
  v = u32(4);
  EXPECT_NE(open_error(patched(4, &v, 4)).find("unknown GGUF version 4"), std::string::npos);
  uint64_t n = u64(uint64_t{1} << 60);
  EXPECT_NE(open_error(patched(8, &n, 8)).find("tensor count"), std::string::npos);
  EXPECT_NE(open_error(patched(16, &n, 8)).find("key-value count"), std::string::npos);
  // The first key is "general.architecture" (8-byte length at 24); its value type follows it.
  const std::size_t type_at = 24 + 8 + std::strlen("general.architecture");
  v = u32(13);
  EXPECT_NE(open_error(patched(type_at, &v, 4)).find("unknown value type 13"), std::string::npos);
  // An array count far beyond the file: the tokens array (the third key).
  const std::size_t tokens = good.find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, std::string::npos);
  n = u64(uint64_t{1} << 40);
  EXPECT_NE(open_error(patched(tokens + 21 + 4 + 4, &n, 8)).find("cannot fit"), std::string::npos);
  // Tensor infos: the last tensor's offset, misaligned and past the end.
  auto f = GgufFile::open(kDir / "strings_v2.gguf");
  const std::size_t q4 = good.find("blk.0.ffn_up.weight");
  const std::size_t offset_at = q4 + std::strlen("blk.0.ffn_up.weight") + 4 + 2 * 8 + 4;
  n = f->find("blk.0.ffn_up.weight")->offset + 1;
  EXPECT_NE(open_error(patched(offset_at, &n, 8)).find("not a multiple of the alignment"), std::string::npos);
  n = f->find("blk.0.ffn_up.weight")->offset + 64;
  EXPECT_NE(open_error(patched(offset_at, &n, 8)).find("past the end"), std::string::npos);
  // An absurd dimension, a row that is not whole Q4_0 blocks, an unknown ggml type, 5 dimensions.
  const std::size_t dims_at = q4 + std::strlen("blk.0.ffn_up.weight") + 4;
  n = u64(uint64_t{1} << 62);
  EXPECT_NE(open_error(patched(dims_at + 8, &n, 8)), "");
  n = u64(48);
  EXPECT_NE(open_error(patched(dims_at, &n, 8)).find("block size 32"), std::string::npos);
  v = u32(4);  // Q4_2, removed from ggml
  EXPECT_NE(open_error(patched(dims_at + 16, &v, 4)).find("unknown ggml type 4"), std::string::npos);
  v = u32(5);
  EXPECT_NE(open_error(patched(dims_at - 4, &v, 4)).find("5 dimensions"), std::string::npos);
}

TEST(Gguf, MissingFileIsFileNotFound) {
  try {
    GgufFile::open(kDir / "no_such.gguf");
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "FileNotFoundError");
  }
}

// The tensor-data hash ignores metadata and tensor order, not the bytes.
TEST(TensorHash, RetaggedGgufKeepsIdentity) {
  EXPECT_EQ(comfy::io::tensor_data_sha256(kDir / "strings_v2.gguf"),
            comfy::io::tensor_data_sha256(kDir / "strings_v2_retagged.gguf"));
  EXPECT_NE(comfy::io::sha256_file_hex(kDir / "strings_v2.gguf"), comfy::io::sha256_file_hex(kDir / "strings_v2_retagged.gguf"));
}

// A safetensors file written by hand: `order` lists the tensors in data order.
std::string safetensors_bytes(const std::vector<std::pair<std::string, std::string>>& order, const json& metadata) {
  json header = json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string data;
  for (const auto& [name, bytes] : order) {
    header[name] = {{"dtype", "F32"}, {"shape", {bytes.size() / 4}}, {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  std::string h = header.dump();
  const uint64_t n = h.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + h + data;
}

TEST(TensorHash, RetaggedSafetensorsKeepsIdentity) {
  TempDir dir;
  const std::string a(16, '\x01'), b(8, '\x02');
  write_bytes(dir.path / "one.safetensors", safetensors_bytes({{"a", a}, {"b", b}}, json{{"ss_tag", "one"}}));
  write_bytes(dir.path / "two.safetensors",
              safetensors_bytes({{"b", b}, {"a", a}}, json{{"ss_tag", "two"}, {"modelspec.title", "x"}}));
  std::string c = a;
  c[3] = '\x05';
  write_bytes(dir.path / "three.safetensors", safetensors_bytes({{"a", c}, {"b", b}}, json{{"ss_tag", "one"}}));
  const std::string h1 = comfy::io::tensor_data_sha256(dir.path / "one.safetensors");
  EXPECT_EQ(h1, comfy::io::tensor_data_sha256(dir.path / "two.safetensors"));
  EXPECT_NE(h1, comfy::io::tensor_data_sha256(dir.path / "three.safetensors"));
  EXPECT_NE(comfy::io::sha256_file_hex(dir.path / "one.safetensors"), comfy::io::sha256_file_hex(dir.path / "two.safetensors"));
  // The documented encoding, recomputed here: a\0F32\04\0<16 LE>bytes b\0F32\02\0<8 LE>bytes.
  comfy::io::Sha256 want;
  auto piece = [&](const std::string& name, const std::string& shape, const std::string& bytes) {
    want.update(name + std::string(1, '\0') + "F32" + std::string(1, '\0') + shape + std::string(1, '\0'));
    const uint64_t n = bytes.size();
    want.update(&n, 8);
    want.update(bytes);
  };
  piece("a", "4", a);
  piece("b", "2", b);
  EXPECT_EQ(h1, want.hex());
}

TEST(Sha256, ProgressReportsEveryChunkAndCanCancel) {
  TempDir dir;
  write_bytes(dir.path / "f.bin", std::string(10000, 'x'));
  std::vector<uint64_t> seen;
  const std::string h = comfy::io::sha256_file_hex(dir.path / "f.bin", [&](uint64_t done, uint64_t total) {
    EXPECT_EQ(total, 10000u);
    seen.push_back(done);
    return true;
  }, 4096);
  EXPECT_EQ(h, comfy::io::sha256_file_hex(dir.path / "f.bin"));
  EXPECT_EQ(seen, (std::vector<uint64_t>{4096, 8192, 10000}));
  EXPECT_THROW(comfy::io::sha256_file_hex(dir.path / "f.bin", [](uint64_t, uint64_t) { return false; }, 4096), ComfyError);
  // sha256("abc"), FIPS 180-2.
  EXPECT_EQ(comfy::io::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
