// `comfycpp models list|info|hash|convert`, run as the real binary in temporary base folders.
// Digests are checked against coreutils' sha256sum and the published BLAKE3 vectors; converted
// tensors against what torch.load read (tests/fixtures/pickles/expected.json).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "io/safetensors.h"

#include "support/shell.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;

using comfy::testing::CliResult;
using comfy::testing::q;
CliResult shell(const std::string& cmd) { return comfy::testing::run_shell(cmd); }

fs::path fixture(const std::string& rel) { return fs::path(COMFY_TEST_DATA) / rel; }

class ModelsCli : public ::testing::Test {
 protected:
  fs::path root;
  void SetUp() override {
    root = fs::temp_directory_path() / ("comfy_models_cli_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root / "models" / "checkpoints");
    fs::create_directories(root / "models" / "loras");
  }
  void TearDown() override { fs::remove_all(root); }

  CliResult models(const std::string& args) {
    return shell(std::string("'") + COMFY_BINARY + "' models " + args + " --base-directory " + q(root) + " 2>/dev/null");
  }
  json models_json(const std::string& args, int want_rc = 0) {
    CliResult r = models(args + " --json");
    EXPECT_EQ(r.rc, want_rc) << args << "\n" << r.out;
    try {
      return json::parse(r.out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << r.out;
      return json();
    }
  }
  static std::string sha256sum(const fs::path& p) {
    CliResult r = shell("sha256sum " + q(p));
    return r.out.substr(0, 64);
  }
};

TEST_F(ModelsCli, InfoOfACheckpointFromAnExtraModelPathsFolder) {
  std::ofstream(root / "extra.yaml") << "fixtures:\n  base_path: " << fixture("models").string()
                                     << "\n  checkpoints: checkpoints\n";
  json j = models_json("info checkpoints/tiny_sd15.safetensors --extra-model-paths-config " + q(root / "extra.yaml"));
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["detected"]["kind"], "checkpoint");
  EXPECT_EQ(j["detected"]["family"], "SD15");
  EXPECT_EQ(j["in_folder"], "checkpoints");
  EXPECT_TRUE(j["hint"].is_null());
  const std::string sha = sha256sum(fixture("models/checkpoints/tiny_sd15.safetensors"));
  EXPECT_EQ(j["sha256"], sha);
  EXPECT_EQ(j["autov2"], sha.substr(0, 10));
  // Without the yaml the name does not resolve: a clear error, exit 1.
  json err = models_json("info checkpoints/tiny_sd15.safetensors", 1);
  EXPECT_EQ(err["error"]["type"], "FileNotFoundError");
}

TEST_F(ModelsCli, VaeInTheCheckpointsFolderGetsTheHint) {
  fs::copy_file(fixture("models/vae/tiny_vae.safetensors"), root / "models/checkpoints/vae_here.safetensors");
  json j = models_json("info checkpoints/vae_here.safetensors --no-hash");
  EXPECT_EQ(j["detected"]["kind"], "VAE");
  EXPECT_EQ(j["detected"]["folder"], "vae");
  EXPECT_EQ(j["in_folder"], "checkpoints");
  ASSERT_TRUE(j["hint"].is_string());
  EXPECT_NE(j["hint"].get<std::string>().find("belongs in models/vae"), std::string::npos);
  EXPECT_FALSE(j.contains("sha256"));
  CliResult human = models("info " + q(root / "models/checkpoints/vae_here.safetensors") + " --no-hash");
  EXPECT_EQ(human.rc, 0);
  EXPECT_NE(human.out.find("HINT:"), std::string::npos) << human.out;
}

TEST_F(ModelsCli, LoraMetadataAndTargetFamily) {
  // A kohya-style LoRA for SD1.x: cross-attention keys 768 wide, ss_* metadata.
  std::vector<std::pair<std::string, at::Tensor>> t = {
      {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", at::zeros({4, 768})},
      {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", at::zeros({320, 4})},
      {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha", at::ones({})}};
  save_safetensors(root / "models/checkpoints/my_lora.safetensors", t,
                   json{{"ss_network_dim", "4"}, {"ss_base_model_version", "sd_v1"}, {"modelspec.title", "mine"}});
  json j = models_json("info checkpoints/my_lora.safetensors --no-hash");
  EXPECT_EQ(j["detected"]["kind"], "LoRA");
  EXPECT_EQ(j["detected"]["family"], "SD15");
  EXPECT_EQ(j["metadata"]["ss_network_dim"], "4");
  EXPECT_EQ(j["metadata"]["modelspec.title"], "mine");
  EXPECT_EQ(j["tensors"], 3);
  EXPECT_EQ(j["parameters"], 4 * 768 + 320 * 4 + 1);
  EXPECT_NE(j["hint"].get<std::string>().find("models/loras"), std::string::npos);
  CliResult human = models("info checkpoints/my_lora.safetensors --no-hash");
  EXPECT_NE(human.out.find("ss_network_dim: 4"), std::string::npos) << human.out;
}

TEST_F(ModelsCli, HashIsCachedUntilTheFileChanges) {
  const fs::path f = root / "models/loras/x.safetensors";
  fs::copy_file(fixture("models/loras/tiny_lora.safetensors"), f);
  json first = models_json("hash loras/x.safetensors");
  EXPECT_EQ(first["sha256"], sha256sum(f));
  EXPECT_EQ(first["cached"], false);
  json second = models_json("hash loras/x.safetensors");
  EXPECT_EQ(second["sha256"], first["sha256"]);
  EXPECT_EQ(second["cached"], true);
  EXPECT_TRUE(fs::exists(root / "user/__comfycpp/model_hashes.sqlite"));
  std::ofstream(f, std::ios::binary | std::ios::app) << "x";  // size and mtime change
  json third = models_json("hash loras/x.safetensors");
  EXPECT_EQ(third["cached"], false);
  EXPECT_EQ(third["sha256"], sha256sum(f));
  EXPECT_NE(third["sha256"], first["sha256"]);
  CliResult human = models("hash loras/x.safetensors");
  EXPECT_NE(human.out.find("AutoV2: " + sha256sum(f).substr(0, 10)), std::string::npos) << human.out;
}

TEST_F(ModelsCli, Blake3OfAFileMatchesThePublishedVector) {
  std::ifstream in(fixture("blake3/test_vectors.json"));
  const json c = json::parse(in).at("cases").back();
  const size_t len = c.at("input_len");
  std::vector<char> bytes(len);
  for (size_t i = 0; i < len; ++i) bytes[i] = static_cast<char>(i % 251);
  std::ofstream(root / "models/loras/v.safetensors", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(len));
  json j = models_json("hash " + q(root / "models/loras/v.safetensors") + " --blake3");
  EXPECT_EQ(j["blake3"], c.at("hash").get<std::string>().substr(0, 64));
}

TEST_F(ModelsCli, ConvertPickleToSafetensors) {
  fs::copy_file(fixture("pickles/legacy_state_dict.ckpt"), root / "models/checkpoints/old.ckpt");
  json j = models_json("convert checkpoints/old.ckpt");
  const fs::path out = root / "models/checkpoints/old.safetensors";
  EXPECT_EQ(j["path"], out.string());
  ASSERT_TRUE(fs::exists(out));
  std::ifstream ein(fixture("pickles/expected.json"));
  const json want = json::parse(ein).at("legacy_state_dict.ckpt");
  auto f = SafetensorsFile::open(out);
  EXPECT_EQ(f->keys().size(), want.size());
  for (const auto& [name, w] : want.items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(f->contains(name));
    at::Tensor t = f->tensor(name).to(at::kDouble).contiguous().reshape({-1});
    std::vector<double> values = w.at("values").get<std::vector<double>>();
    ASSERT_EQ(t.numel(), static_cast<int64_t>(values.size()));
    for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(t[i].item<double>(), values[static_cast<size_t>(i)]);
  }
  EXPECT_EQ(f->metadata().value("global_step", ""), "7");
  EXPECT_EQ(f->metadata().value("format", ""), "pt");
  // A second conversion does not overwrite; nothing but the two files is left in the folder.
  json again = models_json("convert checkpoints/old.ckpt", 1);
  EXPECT_EQ(again["error"]["type"], "FileExistsError");
  size_t files = 0;
  for (auto& e : fs::directory_iterator(root / "models/checkpoints")) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);
  // The converted file is a model like any other.
  json info = models_json("info checkpoints/old.safetensors --no-hash");
  EXPECT_EQ(info["tensors"], want.size());
}

TEST_F(ModelsCli, PickleThatRunsCodeIsRefused) {
  fs::copy_file(fixture("pickles/evil_nested.ckpt"), root / "models/checkpoints/evil.ckpt");
  for (const char* cmd : {"info", "convert"}) {
    json j = models_json(std::string(cmd) + " checkpoints/evil.ckpt", 1);
    EXPECT_EQ(j["error"]["type"], "UnpicklingError") << cmd;
    EXPECT_NE(j["error"]["message"].get<std::string>().find("'os.system'"), std::string::npos) << j.dump();
  }
  EXPECT_FALSE(fs::exists(root / "models/checkpoints/evil.safetensors"));
  EXPECT_FALSE(fs::exists("/tmp/comfy_pwned_3"));
}

TEST_F(ModelsCli, ListShowsEveryFolderOrOne) {
  fs::copy_file(fixture("pickles/zip_flat.pt"), root / "models/checkpoints/a.pt");
  fs::create_directories(root / "models/loras/sub");
  fs::copy_file(fixture("models/loras/tiny_lora.safetensors"), root / "models/loras/sub/b.safetensors");
  json all = models_json("list");
  ASSERT_TRUE(all.contains("checkpoints"));
  ASSERT_EQ(all["checkpoints"].size(), 1u);
  EXPECT_EQ(all["checkpoints"][0]["name"], "a.pt");
  EXPECT_EQ(all["checkpoints"][0]["size"], fs::file_size(fixture("pickles/zip_flat.pt")));
  EXPECT_EQ(all["loras"][0]["name"], "sub/b.safetensors");
  json one = models_json("list loras");
  EXPECT_EQ(one.size(), 1u);
  EXPECT_TRUE(one.contains("loras"));
  json bad = models_json("list nosuchfolder", 1);
  EXPECT_EQ(bad["error"]["type"], "KeyError");
  CliResult human = models("list");
  EXPECT_NE(human.out.find("loras/sub/b.safetensors"), std::string::npos) << human.out;
}

}  // namespace
}  // namespace comfy
