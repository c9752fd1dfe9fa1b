// The safetensors reader and writer: the tiny fixture models (made by the oracle's writer),
// zero-copy views, round trips, every kind of hostile header, and fp8 decoding.
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "support/temp_files.h"

namespace fs = std::filesystem;
using comfy::test::TempDir;
using comfy::test::read_bytes;
using comfy::test::write_bytes;
using comfy::ComfyError;
using comfy::json;
using comfy::SafetensorsFile;

namespace {

const fs::path kModels = fs::path(COMFY_TEST_DATA) / "models";

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file made of a header text (its length written in front) and `data_size` zero bytes.
fs::path craft(const TempDir& dir, const std::string& name, const std::string& header, std::size_t data_size) {
  fs::path p = dir.path / name;
  write_bytes(p, le64(header.size()) + header + std::string(data_size, '\0'));
  return p;
}

// Opens `p`, expecting a ComfyError whose message has `kind` and the file's path.
void expect_refused(const fs::path& p, const std::string& kind) {
  try {
    SafetensorsFile::open(p);
    ADD_FAILURE() << "opened " << p << ", expected " << kind;
  } catch (const ComfyError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(kind), std::string::npos) << msg;
    EXPECT_NE(msg.find(p.string()), std::string::npos) << "the message should name the file: " << msg;
  }
}

}  // namespace

TEST(Safetensors, ReadsTinyCheckpoint) {
  auto f = SafetensorsFile::open(kModels / "checkpoints" / "tiny_sd15.safetensors");
  ASSERT_EQ(f->keys().size(), 541u);
  // Header order (the oracle's writer: I64 first, then F16 by name).
  EXPECT_EQ(f->keys().front(), "cond_stage_model.transformer.text_model.embeddings.position_ids");
  EXPECT_EQ(f->keys().back(), "model.diffusion_model.time_embed.2.weight");
  EXPECT_EQ(f->metadata().size(), 2u);
  EXPECT_TRUE(f->metadata().contains("oracle_tiny_config"));
  EXPECT_EQ(f->metadata()["format"], "pt");
  int f16 = 0, i64 = 0;
  for (const auto& k : f->keys()) (f->info(k).dtype == "F16" ? f16 : i64)++;
  EXPECT_EQ(f16, 540);
  EXPECT_EQ(i64, 1);

  const auto& pos = f->info("cond_stage_model.transformer.text_model.embeddings.position_ids");
  EXPECT_EQ(pos.dtype, "I64");
  EXPECT_EQ(pos.shape, (std::vector<int64_t>{1, 77}));
  EXPECT_EQ(pos.begin, 0u);
  EXPECT_EQ(pos.end, 616u);
  at::Tensor ids = f->tensor("cond_stage_model.transformer.text_model.embeddings.position_ids");
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  EXPECT_EQ(ids[0][0].item<int64_t>(), 0);
  EXPECT_EQ(ids[0][76].item<int64_t>(), 76);

  at::Tensor w = f->tensor("model.diffusion_model.input_blocks.0.0.weight");
  EXPECT_EQ(w.scalar_type(), at::kHalf);
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{32, 4, 3, 3}));
  // Values read from the file's bytes with Python's struct ('<e').
  EXPECT_EQ(w.flatten()[0].item<float>(), -0.2491455078125f);
  EXPECT_EQ(w.flatten()[1].item<float>(), 0.1468505859375f);
  EXPECT_EQ(w.flatten()[-1].item<float>(), 0.15380859375f);

  at::Tensor emb = f->tensor("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight");
  EXPECT_EQ(emb.sizes(), (std::vector<int64_t>{49408, 128}));
  EXPECT_EQ(emb[0][0].item<float>(), 0.1407470703125f);
  EXPECT_EQ(emb[49407][127].item<float>(), -0.10760498046875f);
  EXPECT_EQ(f->info("first_stage_model.decoder.conv_in.bias").shape, (std::vector<int64_t>{64}));
  EXPECT_TRUE(f->contains("first_stage_model.decoder.conv_in.bias"));
  EXPECT_FALSE(f->contains("nope"));
  EXPECT_THROW(f->info("nope"), ComfyError);
}

TEST(Safetensors, TensorsAreViewsIntoTheMapping) {
  auto f = SafetensorsFile::open(kModels / "checkpoints" / "tiny_sd15.safetensors");
  const uint8_t* lo = f->mapped_data();
  const uint8_t* hi = lo + f->mapped_size();
  EXPECT_EQ(f->mapped_size(), 19384094u);
  for (const auto& key : f->keys()) {
    at::Tensor t = f->tensor(key);
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    ASSERT_TRUE(p >= lo && p + t.nbytes() <= hi) << key << " was copied";
  }
  // The view keeps the mapping alive after the file object is gone.
  at::Tensor t = f->tensor("model.diffusion_model.input_blocks.0.0.weight");
  f.reset();
  EXPECT_EQ(t.flatten()[-1].item<float>(), 0.15380859375f);
}

TEST(Safetensors, ReadsOtherFixtureModels) {
  auto vae = SafetensorsFile::open(kModels / "vae" / "tiny_vae.safetensors");
  EXPECT_EQ(vae->keys().size(), 180u);
  for (const auto& k : vae->keys()) EXPECT_EQ(vae->info(k).dtype, "F32");

  auto lora = SafetensorsFile::open(kModels / "loras" / "tiny_lora.safetensors");
  EXPECT_EQ(lora->keys().size(), 246u);
  at::Tensor alpha = lora->tensor("lora_te_text_model_encoder_layers_0_mlp_fc1.alpha");
  EXPECT_EQ(alpha.dim(), 0);
  EXPECT_EQ(alpha.scalar_type(), at::kHalf);
  EXPECT_EQ(alpha.item<float>(), 2.0f);

  auto emb = SafetensorsFile::open(kModels / "embeddings" / "tiny_emb.safetensors");
  ASSERT_EQ(emb->keys(), std::vector<std::string>{"emb_params"});
  at::Tensor e = emb->tensor("emb_params");
  EXPECT_EQ(e.sizes(), (std::vector<int64_t>{2, 128}));
  EXPECT_EQ(e[0][0].item<float>(), 0.20044760406017303f);
  EXPECT_EQ(e[1][127].item<float>(), -0.11041740328073502f);
}

TEST(Safetensors, RewritingTheCheckpointGivesTheSameBytes) {
  // The fixture was written by a writer with the reference layout rules; ours must agree.
  TempDir dir;
  const fs::path src = kModels / "checkpoints" / "tiny_sd15.safetensors";
  auto f = SafetensorsFile::open(src);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto it = f->keys().rbegin(); it != f->keys().rend(); ++it) tensors.emplace_back(*it, f->tensor(*it));
  const fs::path out = dir.path / "copy.safetensors";
  comfy::save_safetensors(out, tensors, f->metadata());
  EXPECT_TRUE(read_bytes(out) == read_bytes(src));
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir dir;
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f64", at::tensor({1.5, -2.25}, at::kDouble)},
      {"f32", at::arange(6, at::kFloat).reshape({2, 3})},
      {"f16", at::tensor({0.5f, 65504.f}).to(at::kHalf)},
      {"bf16", at::tensor({1.0f, -3.0f}).to(at::kBFloat16)},
      {"i64", at::tensor({int64_t{1} << 40, int64_t{-7}}, at::kLong)},
      {"i32", at::tensor({-5, 7}, at::kInt)},
      {"i16", at::tensor({-300, 300}, at::kShort)},
      {"i8", at::tensor({-100, 100}, at::kChar)},
      {"u8", at::tensor({0, 255}, at::kByte)},
      {"bool", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)},
      {"scalar", at::scalar_tensor(3.0, at::kFloat)},
      {"empty", at::zeros({0, 3}, at::kFloat)},
      {"strided", at::arange(12, at::kFloat).reshape({3, 4}).t()},
  };
  const fs::path p = dir.path / "all.safetensors";
  comfy::save_safetensors(p, tensors, json{{"prompt", "{\"a\": 1}"}, {"note", "ünïcode"}});
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f->metadata(), (json{{"prompt", "{\"a\": 1}"}, {"note", "ünïcode"}}));
  const std::map<std::string, std::string> dtypes = {
      {"f64", "F64"}, {"f32", "F32"}, {"f16", "F16"}, {"bf16", "BF16"}, {"i64", "I64"},
      {"i32", "I32"}, {"i16", "I16"}, {"i8", "I8"},   {"u8", "U8"},     {"bool", "BOOL"},
      {"scalar", "F32"}, {"empty", "F32"}, {"strided", "F32"}};
  for (const auto& [name, t] : tensors) {
    EXPECT_EQ(f->info(name).dtype, dtypes.at(name)) << name;
    at::Tensor back = f->tensor(name);
    EXPECT_EQ(back.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
    EXPECT_TRUE(at::equal(back, t)) << name;
  }
  // The reference layout: the header lists tensors by descending dtype alignment, then name.
  EXPECT_EQ(f->keys(), (std::vector<std::string>{"i64", "f64", "empty", "f32", "scalar", "strided", "i32",
                                                 "bf16", "f16", "i16", "i8", "u8", "bool"}));
  EXPECT_EQ(f->info("i64").begin, 0u);
  // No temporary file is left beside the result.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Safetensors, SaveWritesReferenceHeaderBytes) {
  TempDir dir;
  const fs::path p = dir.path / "small.safetensors";
  comfy::save_safetensors(p, {{"b", at::zeros({2}, at::kHalf)}, {"a", at::zeros({1}, at::kFloat)}}, json());
  // Expected bytes as the reference library lays them out (no metadata, space padding to 8).
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(read_bytes(p), le64(padded.size()) + padded + std::string(8, '\0'));
}

TEST(Safetensors, SaveRefusesBadInput) {
  TempDir dir;
  const fs::path p = dir.path / "x.safetensors";
  EXPECT_THROW(comfy::save_safetensors(p, {{"a", at::zeros({1})}, {"a", at::zeros({1})}}), ComfyError);
  EXPECT_THROW(comfy::save_safetensors(p, {{"a", at::zeros({1})}}, json{{"n", 1}}), ComfyError);
  EXPECT_THROW(comfy::save_safetensors(p, {{"c", at::zeros({1}, at::kComplexDouble)}}), ComfyError);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_THROW(comfy::save_safetensors(dir.path / "missing_dir" / "x.safetensors", {{"a", at::zeros({1})}}),
               ComfyError);
}

TEST(Safetensors, SaveReplacesAnExistingFile) {
  TempDir dir;
  const fs::path p = dir.path / "x.safetensors";
  comfy::save_safetensors(p, {{"a", at::ones({4})}});
  auto first = SafetensorsFile::open(p);
  at::Tensor old_view = first->tensor("a");
  comfy::save_safetensors(p, {{"a", at::full({4}, 2.0f)}});
  EXPECT_EQ(SafetensorsFile::open(p)->tensor("a")[0].item<float>(), 2.0f);
  // The old mapping still reads the old (renamed-over) file.
  EXPECT_EQ(old_view[0].item<float>(), 1.0f);
}

TEST(Safetensors, MisalignedTensorIsCopiedAligned) {
  TempDir dir;
  // Pad the header so that the data section starts at an address = 1 (mod 4).
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  while ((8 + header.size()) % 4 != 1) header += ' ';
  float vals[2] = {1.25f, -8.5f};
  std::string data(reinterpret_cast<const char*>(vals), 8);
  const fs::path p = dir.path / "misaligned.safetensors";
  write_bytes(p, le64(header.size()) + header + data);
  auto f = SafetensorsFile::open(p);
  at::Tensor t = f->tensor("a");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data_ptr()) % 4, 0u);
  EXPECT_EQ(t[0].item<float>(), 1.25f);
  EXPECT_EQ(t[1].item<float>(), -8.5f);
}

TEST(Safetensors, AcceptsHeaderOrderOtherThanDataOrder) {
  // The reference sorts entries by offsets, so the header may list them in any order.
  TempDir dir;
  auto p = craft(dir, "order.safetensors",
                 R"({"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                 8);
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f->keys(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(f->info("b").begin, 4u);
  EXPECT_TRUE(f->metadata().empty());
}

TEST(Safetensors, AcceptsEmptyFileWithoutTensors) {
  TempDir dir;
  auto f = SafetensorsFile::open(craft(dir, "empty.safetensors", "{}", 0));
  EXPECT_TRUE(f->keys().empty());
  auto g = SafetensorsFile::open(craft(dir, "nullmeta.safetensors", R"({"__metadata__":null})", 0));
  EXPECT_TRUE(g->metadata().empty());
}

TEST(Safetensors, UnsignedWideDtypesAreListedButNotLoaded) {
  TempDir dir;
  auto f = SafetensorsFile::open(
      craft(dir, "u32.safetensors", R"({"a":{"dtype":"U32","shape":[2],"data_offsets":[0,8]}})", 8));
  EXPECT_EQ(f->info("a").dtype, "U32");
  EXPECT_THROW(f->tensor("a"), ComfyError);
}

TEST(Safetensors, RefusesShortFiles) {
  TempDir dir;
  write_bytes(dir.path / "empty.safetensors", "");
  expect_refused(dir.path / "empty.safetensors", "HeaderTooSmall");
  write_bytes(dir.path / "five.safetensors", "abcde");
  expect_refused(dir.path / "five.safetensors", "HeaderTooSmall");
}

TEST(Safetensors, RefusesHugeHeaderLengthsBeforeAllocating) {
  TempDir dir;
  write_bytes(dir.path / "huge.safetensors", le64(200'000'000) + "{}");
  expect_refused(dir.path / "huge.safetensors", "HeaderTooLarge");
  write_bytes(dir.path / "max.safetensors", le64(std::numeric_limits<uint64_t>::max()) + "{}");
  expect_refused(dir.path / "max.safetensors", "HeaderTooLarge");
  write_bytes(dir.path / "past_end.safetensors", le64(1000) + "{}");
  expect_refused(dir.path / "past_end.safetensors", "InvalidHeaderLength");
  // A file that is not safetensors at all (a pickle's zip header): its "length" is huge.
  std::string zip("PK\x03\x04\x14\x00\x00\x00\x08\x00", 10);
  zip.append(64, 'x');
  write_bytes(dir.path / "zip.safetensors", zip);
  expect_refused(dir.path / "zip.safetensors", "HeaderTooLarge");
}

TEST(Safetensors, RefusesInvalidJson) {
  TempDir dir;
  expect_refused(craft(dir, "trunc.safetensors", R"({"a":{"dtype":)", 0), "InvalidHeaderDeserialization");
  expect_refused(craft(dir, "array.safetensors", "[1,2]", 0), "InvalidHeaderDeserialization");
  expect_refused(craft(dir, "utf8.safetensors", "{\"\xff\xfe\":1}", 0), "InvalidHeaderDeserialization");
  expect_refused(craft(dir, "dup.safetensors",
                       R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                       2),
                 "duplicate");
}

TEST(Safetensors, RefusesMalformedEntries) {
  TempDir dir;
  auto entry = [&](const std::string& name, const std::string& body, std::size_t data) {
    return craft(dir, name + ".safetensors", "{\"t\":" + body + "}", data);
  };
  expect_refused(entry("number", "5", 0), "is not an object");
  expect_refused(entry("no_offsets", R"({"dtype":"F32","shape":[1]})", 4), "lacks");
  expect_refused(entry("unknown_dtype", R"({"dtype":"F7","shape":[1],"data_offsets":[0,1]})", 1), "unknown or unsupported dtype");
  expect_refused(entry("dtype_number", R"({"dtype":3,"shape":[1],"data_offsets":[0,1]})", 1), "dtype");
  expect_refused(entry("negative_dim", R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})", 1), "shape entry");
  expect_refused(entry("float_dim", R"({"dtype":"U8","shape":[1.5],"data_offsets":[0,1]})", 1), "shape entry");
  expect_refused(entry("dim_past_int64", R"({"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,1]})", 1),
                 "shape entry");
  expect_refused(entry("dim_overflow", R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]})", 16),
                 "ValidationOverflow");
  expect_refused(entry("bytes_overflow", R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]})", 8),
                 "ValidationOverflow");
  expect_refused(entry("offsets_three", R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})", 1), "data_offsets");
  expect_refused(entry("offsets_negative", R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})", 1), "data_offsets");
  expect_refused(entry("meta_not_string", R"({"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":{"a":1})", 1),
                 "__metadata__");
}

TEST(Safetensors, RefusesBadDataLayouts) {
  TempDir dir;
  auto two = [&](const std::string& name, const std::string& a, const std::string& b, std::size_t data) {
    return craft(dir, name + ".safetensors",
                 R"({"a":{"dtype":"F32","shape":[4],"data_offsets":)" + a +
                     R"(},"b":{"dtype":"F32","shape":[4],"data_offsets":)" + b + "}}",
                 data);
  };
  expect_refused(two("overlap", "[0,16]", "[8,24]", 24), "InvalidOffset");
  expect_refused(two("hole", "[0,16]", "[20,36]", 36), "InvalidOffset");
  expect_refused(two("not_from_zero", "[4,20]", "[20,36]", 36), "InvalidOffset");
  expect_refused(two("same_range", "[0,16]", "[0,16]", 16), "InvalidOffset");
  expect_refused(two("begin_after_end", "[0,16]", "[16,0]", 32), "InvalidOffset");
  expect_refused(two("size_mismatch", "[0,16]", "[16,28]", 28), "TensorInvalidInfo");
  expect_refused(two("truncated", "[0,16]", "[16,32]", 20), "MetadataIncompleteBuffer");
  expect_refused(two("trailing_bytes", "[0,16]", "[16,32]", 40), "MetadataIncompleteBuffer");
  expect_refused(two("past_eof", "[0,16]", "[16,32]", 16), "MetadataIncompleteBuffer");
}

TEST(Safetensors, TruncatedCheckpointNamesTheFile) {
  TempDir dir;
  const std::string bytes = read_bytes(kModels / "checkpoints" / "tiny_sd15.safetensors");
  const fs::path p = dir.path / "partial download.safetensors";
  write_bytes(p, bytes.substr(0, bytes.size() / 2));
  try {
    SafetensorsFile::open(p);
    FAIL() << "opened a truncated file";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "ValueError");
    const std::string msg = e.what();
    EXPECT_NE(msg.find("MetadataIncompleteBuffer"), std::string::npos) << msg;
    EXPECT_NE(msg.find("File path: " + p.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("corrupt/incomplete"), std::string::npos) << msg;
  }
  write_bytes(p, bytes.substr(0, 1000));  // cut inside the header
  expect_refused(p, "InvalidHeaderLength");
}

TEST(Safetensors, MissingFileIsFileNotFound) {
  try {
    SafetensorsFile::open("/nonexistent/dir/model.safetensors");
    FAIL();
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "FileNotFoundError");
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, Fp8E4M3DecodesPerOcpSpec) {
  // Hand-computed: E4M3FN, bias 7, subnormals m/8 * 2^-6, no infinities, S.1111.111 = NaN.
  const std::vector<std::pair<uint8_t, float>> cases = {
      {0x00, 0.0f},        {0x80, -0.0f},         {0x01, 0.001953125f},  // 2^-9
      {0x07, 0.013671875f},  // 7 * 2^-9
      {0x08, 0.015625f},     // 2^-6, smallest normal
      {0x38, 1.0f},        {0xB8, -1.0f},         {0x3C, 1.5f},         {0x40, 2.0f},
      {0x78, 256.0f},        // e=15 is still finite
      {0x7E, 448.0f},      {0xFE, -448.0f},
  };
  std::vector<uint8_t> bytes;
  for (auto& c : cases) bytes.push_back(c.first);
  bytes.push_back(0x7F);
  bytes.push_back(0xFF);
  at::Tensor raw = at::from_blob(bytes.data(), {static_cast<int64_t>(bytes.size())}, at::kByte).clone();
  at::Tensor f = comfy::fp8_to_float32(raw, "F8_E4M3");
  ASSERT_EQ(f.scalar_type(), at::kFloat);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(f[static_cast<int64_t>(i)].item<float>(), cases[i].second) << "byte " << int(cases[i].first);
    EXPECT_EQ(std::signbit(f[static_cast<int64_t>(i)].item<float>()), std::signbit(cases[i].second));
  }
  EXPECT_TRUE(std::isnan(f[static_cast<int64_t>(cases.size())].item<float>()));
  EXPECT_TRUE(std::isnan(f[static_cast<int64_t>(cases.size()) + 1].item<float>()));
}

TEST(Safetensors, Fp8E5M2DecodesPerOcpSpec) {
  // Hand-computed: E5M2, bias 15, subnormals m/4 * 2^-14, e=31: m=0 infinity, else NaN.
  const std::vector<std::pair<uint8_t, float>> cases = {
      {0x00, 0.0f},          {0x01, 1.52587890625e-05f},  // 2^-16
      {0x04, 6.103515625e-05f},  // 2^-14
      {0x3C, 1.0f},          {0x3E, 1.5f},  {0x40, 2.0f},  {0xC0, -2.0f},
      {0x7B, 57344.0f},      // 1.75 * 2^15, the largest finite
      {0x7C, std::numeric_limits<float>::infinity()},
      {0xFC, -std::numeric_limits<float>::infinity()},
  };
  std::vector<uint8_t> bytes;
  for (auto& c : cases) bytes.push_back(c.first);
  bytes.push_back(0x7D);
  bytes.push_back(0xFF);
  at::Tensor raw = at::from_blob(bytes.data(), {static_cast<int64_t>(bytes.size())}, at::kByte).clone();
  at::Tensor f = comfy::fp8_to_float32(raw, "F8_E5M2");
  for (std::size_t i = 0; i < cases.size(); ++i)
    EXPECT_EQ(f[static_cast<int64_t>(i)].item<float>(), cases[i].second) << "byte " << int(cases[i].first);
  EXPECT_TRUE(std::isnan(f[static_cast<int64_t>(cases.size())].item<float>()));
  EXPECT_TRUE(std::isnan(f[static_cast<int64_t>(cases.size()) + 1].item<float>()));
  EXPECT_THROW(comfy::fp8_to_float32(raw, "F16"), ComfyError);
  EXPECT_THROW(comfy::fp8_to_float32(raw.to(at::kFloat), "F8_E5M2"), ComfyError);
}

TEST(Safetensors, Fp8TensorsLoadAsBytes) {
  TempDir dir;
  const std::string header =
      R"({"w":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]},"v":{"dtype":"F8_E5M2","shape":[1],"data_offsets":[4,5]}})";
  const fs::path p = dir.path / "fp8.safetensors";
  write_bytes(p, le64(header.size()) + header + std::string("\x38\x40\xB8\x7E\x3C", 5));
  auto f = SafetensorsFile::open(p);
  EXPECT_TRUE(comfy::is_fp8_dtype(f->info("w").dtype));
  at::Tensor w = f->tensor("w");
  EXPECT_EQ(w.scalar_type(), at::kByte);
  EXPECT_EQ(w.sizes(), (std::vector<int64_t>{2, 2}));
  at::Tensor wf = comfy::fp8_to_float32(w, f->info("w").dtype);
  EXPECT_TRUE(at::equal(wf, at::tensor({1.0f, 2.0f, -1.0f, 448.0f}).reshape({2, 2})));
  EXPECT_EQ(comfy::fp8_to_float32(f->tensor("v"), "F8_E5M2")[0].item<float>(), 1.0f);
}
