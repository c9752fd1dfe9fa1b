// BLAKE3 against the published test vectors (BLAKE3-team/BLAKE3 test_vectors/test_vectors.json,
// copied unchanged into tests/fixtures/blake3/): inputs of the repeating bytes 0..250 of each
// listed length, 131-byte extended outputs in the three modes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "io/blake3.h"

namespace comfy::io {
namespace {

json vectors() {
  std::ifstream in(std::string(COMFY_TEST_DATA) + "/blake3/test_vectors.json");
  return json::parse(in);
}

std::vector<uint8_t> input_of(std::size_t len) {
  std::vector<uint8_t> v(len);
  for (std::size_t i = 0; i < len; ++i) v[i] = static_cast<uint8_t>(i % 251);
  return v;
}

TEST(Blake3, PublishedVectorsAllModesExtendedOutput) {
  json t = vectors();
  const std::string key_text = t.at("key");
  std::array<uint8_t, 32> key{};
  std::copy(key_text.begin(), key_text.end(), key.begin());
  ASSERT_GE(t.at("cases").size(), 30u);
  for (const json& c : t.at("cases")) {
    const std::size_t len = c.at("input_len");
    SCOPED_TRACE("input_len " + std::to_string(len));
    const std::vector<uint8_t> in = input_of(len);
    const std::string want_hash = c.at("hash");
    Blake3 h;
    h.update(in.data(), in.size());
    EXPECT_EQ(h.hex(want_hash.size() / 2), want_hash);
    EXPECT_EQ(h.hex(), want_hash.substr(0, 64));  // the default output is the first 32 bytes
    Blake3 k = Blake3::keyed(key);
    k.update(in.data(), in.size());
    EXPECT_EQ(k.hex(131), c.at("keyed_hash").get<std::string>());
    Blake3 d = Blake3::derive_key(t.at("context_string"));
    d.update(in.data(), in.size());
    EXPECT_EQ(d.hex(131), c.at("derive_key").get<std::string>());
  }
}

TEST(Blake3, UpdateSplitsDoNotChangeTheHash) {
  json t = vectors();
  for (const json& c : t.at("cases")) {
    const std::size_t len = c.at("input_len");
    if (len < 1025) continue;
    const std::vector<uint8_t> in = input_of(len);
    for (std::size_t step : {std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{1000}, std::size_t{1024}}) {
      Blake3 h;
      for (std::size_t pos = 0; pos < len; pos += step) h.update(in.data() + pos, std::min(step, len - pos));
      EXPECT_EQ(h.hex(), c.at("hash").get<std::string>().substr(0, 64)) << len << " in steps of " << step;
    }
  }
}

TEST(Blake3, FileHashMatchesTheVector) {
  json t = vectors();
  const json& c = t.at("cases").back();  // the longest input
  const std::vector<uint8_t> in = input_of(c.at("input_len"));
  auto path = std::filesystem::temp_directory_path() / ("comfy_blake3_" + std::to_string(getpid()));
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  uint64_t seen = 0;
  EXPECT_EQ(blake3_file_hex(path, [&](uint64_t done) { seen = done; }), c.at("hash").get<std::string>().substr(0, 64));
  EXPECT_EQ(seen, in.size());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace comfy::io
