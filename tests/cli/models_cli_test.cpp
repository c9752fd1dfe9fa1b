// `comfycpp models list|info|hash|convert`, run as the real binary in temporary base folders.
// Digests are checked against coreutils' sha256sum and the published BLAKE3 vectors; converted
// tensors against what torch.load read (tests/fixtures/pickles/expected.json).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
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

// ---------------------------------------------------------------------------------------------
// GGUF files (tests/fixtures/gguf, written by tools/fixtures/make_gguf.py), the tensor-data hash,
// verify and dedupe.

TEST_F(ModelsCli, GgufFilesAreListedAndInspected) {
  fs::create_directories(root / "models/unet");
  fs::create_directories(root / "models/text_encoders");
  fs::copy_file(fixture("gguf/tiny_sd15_unet.gguf"), root / "models/unet/tiny.gguf");
  fs::copy_file(fixture("gguf/strings_v2.gguf"), root / "models/text_encoders/te.gguf");
  json all = models_json("list");
  ASSERT_EQ(all["diffusion_models"].size(), 1u) << all.dump();
  EXPECT_EQ(all["diffusion_models"][0]["name"], "tiny.gguf");
  EXPECT_EQ(all["diffusion_models"][0]["gguf"]["architecture"], "sd1");
  EXPECT_EQ(all["diffusion_models"][0]["gguf"]["tensors"], 324);
  ASSERT_EQ(all["text_encoders"].size(), 1u);
  EXPECT_EQ(all["text_encoders"][0]["gguf"]["types"]["Q4_0"], 1);

  json j = models_json("info diffusion_models/tiny.gguf --no-hash");
  EXPECT_EQ(j["format"], "gguf (version 3)");
  EXPECT_EQ(j["tensors"], 324);
  EXPECT_EQ(j["metadata"]["general.architecture"], "sd1");
  EXPECT_EQ(j["gguf"]["types"]["general.file_type"], "uint32");
  EXPECT_GT(j["dtypes"]["Q8_0"].get<int>(), 0);
  EXPECT_GT(j["dtypes"]["F32"].get<int>(), 0);
  EXPECT_EQ(j["detected"]["kind"], "diffusion model");
  EXPECT_EQ(j["detected"]["family"], "SD15");
  EXPECT_EQ(j["in_folder"], "diffusion_models");
  EXPECT_TRUE(j["hint"].is_null());

  json te = models_json("info text_encoders/te.gguf --no-hash");
  EXPECT_EQ(te["format"], "gguf (version 2)");
  EXPECT_EQ(te["detected"]["kind"], "text encoder");
  EXPECT_EQ(te["metadata"]["tokenizer.ggml.tokens"][2], "h\u00e9llo");
  CliResult human = models("info text_encoders/te.gguf --no-hash");
  EXPECT_NE(human.out.find("general.architecture: t5encoder"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("Q4_0 x1"), std::string::npos) << human.out;

  fs::copy_file(fixture("gguf/corrupt_string_length.gguf"), root / "models/unet/bad.gguf");
  json bad = models_json("info diffusion_models/bad.gguf --no-hash", 1);
  EXPECT_EQ(bad["error"]["type"], "ValueError");
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("bad.gguf"), std::string::npos);
}

TEST_F(ModelsCli, TensorHashSurvivesRetaggingTheMetadata) {
  const fs::path a = root / "models/loras/a.safetensors", b = root / "models/loras/b.safetensors";
  fs::copy_file(fixture("models/loras/tiny_lora.safetensors"), a);
  auto f = SafetensorsFile::open(a);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const std::string& k : f->keys()) tensors.emplace_back(k, f->tensor(k));
  save_safetensors(b, tensors, json{{"ss_output_name", "retagged"}, {"modelspec.title", "new title"}});
  json ha = models_json("hash loras/a.safetensors --tensors");
  json hb = models_json("hash loras/b.safetensors --tensors");
  ASSERT_TRUE(ha["tensors_sha256"].is_string()) << ha.dump();
  EXPECT_EQ(ha["tensors_sha256"], hb["tensors_sha256"]);
  EXPECT_EQ(ha["cached"], false);
  EXPECT_NE(sha256sum(a), sha256sum(b));
  EXPECT_EQ(models_json("hash loras/a.safetensors --tensors")["cached"], true);
  // A changed weight changes it.
  tensors[0].second = tensors[0].second.clone();
  tensors[0].second.view(-1)[0] += 1;
  save_safetensors(root / "models/loras/c.safetensors", tensors, json::object());
  EXPECT_NE(models_json("hash loras/c.safetensors --tensors")["tensors_sha256"], ha["tensors_sha256"]);
  json info = models_json("info loras/b.safetensors --no-hash --tensors");
  EXPECT_EQ(info["tensors_sha256"], ha["tensors_sha256"]);
  json gguf = models_json("hash " + q(fixture("gguf/strings_v2.gguf")) + " --tensors");
  std::ifstream in(fixture("gguf/expected.json"));
  EXPECT_EQ(gguf["tensors_sha256"], json::parse(in)["strings_v2.gguf"]["tensors_sha256"]);
}

TEST_F(ModelsCli, VerifyFindsTruncationBitRotSidecarsAndPartFiles) {
  const fs::path lora = fixture("models/loras/tiny_lora.safetensors");
  const fs::path good = root / "models/loras/good.safetensors", cut = root / "models/loras/cut.safetensors",
                 rot = root / "models/loras/rot.safetensors", side = root / "models/loras/side.safetensors";
  for (const fs::path& p : {good, cut, rot, side}) fs::copy_file(lora, p);
  fs::resize_file(cut, fs::file_size(cut) - 100);
  std::ofstream(root / "models/loras/side.safetensors.sha256") << std::string(64, '0') << "  side.safetensors\n";
  std::ofstream(root / "models/loras/good.safetensors.sha256") << sha256sum(good) << " *good.safetensors\n";
  std::ofstream(root / "models/loras/dl.safetensors.part") << "half a file";
  // Hash rot.safetensors (recorded in the cache), then flip one byte and put its mtime back.
  ASSERT_EQ(models_json("hash loras/rot.safetensors")["sha256"], sha256sum(lora));
  const auto mtime = fs::last_write_time(rot);
  {
    std::fstream io(rot, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(static_cast<std::streamoff>(fs::file_size(rot) - 10));
    io.put('\x7f');
  }
  fs::last_write_time(rot, mtime);

  CliResult raw = models("verify loras --json");
  EXPECT_EQ(raw.rc, 1);
  json j = json::parse(raw.out);
  std::map<std::string, json> by_name;
  for (const json& f : j["files"]) by_name[fs::path(f["path"].get<std::string>()).filename().string()] = f;
  ASSERT_EQ(by_name.size(), 5u) << j.dump(1);
  EXPECT_EQ(by_name["good.safetensors"]["status"], "ok") << by_name["good.safetensors"].dump(1);
  EXPECT_EQ(by_name["cut.safetensors"]["status"], "failed");
  EXPECT_NE(by_name["cut.safetensors"].dump().find("incomplete"), std::string::npos) << by_name["cut.safetensors"].dump(1);
  EXPECT_EQ(by_name["rot.safetensors"]["status"], "failed");
  EXPECT_NE(by_name["rot.safetensors"].dump().find("bit rot"), std::string::npos) << by_name["rot.safetensors"].dump(1);
  EXPECT_EQ(by_name["side.safetensors"]["status"], "failed");
  EXPECT_NE(by_name["side.safetensors"].dump().find("side.safetensors.sha256 says"), std::string::npos);
  EXPECT_EQ(by_name["dl.safetensors.part"]["status"], "incomplete");
  EXPECT_EQ(j["failed"], 3);
  EXPECT_EQ(j["incomplete"], 1);
  // The good file alone passes (its sidecar checked); human output names the failures.
  json one = models_json("verify loras/good.safetensors");
  EXPECT_EQ(one["failed"], 0);
  EXPECT_EQ(one["files"][0]["checks"].size(), 2u) << one.dump(1);
  CliResult human = models("verify");
  EXPECT_EQ(human.rc, 1);
  EXPECT_NE(human.out.find("FAILED  " + rot.string()), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("PARTIAL "), std::string::npos) << human.out;
  // GGUF: the good file passes, a truncated one fails.
  fs::create_directories(root / "models/unet");
  fs::copy_file(fixture("gguf/strings_v2.gguf"), root / "models/unet/ok.gguf");
  fs::copy_file(fixture("gguf/strings_v2.gguf"), root / "models/unet/cut.gguf");
  fs::resize_file(root / "models/unet/cut.gguf", 1300);
  json g = models_json("verify diffusion_models", 1);
  EXPECT_EQ(g["failed"], 1);
  EXPECT_EQ(g["checked"], 2);
}

TEST_F(ModelsCli, DedupeLinksCopiesAcrossRoots) {
  const fs::path other = root / "other_root";
  fs::create_directories(other / "loras");
  std::ofstream(root / "extra.yaml") << "second:\n  base_path: " << other.string() << "\n  loras: loras\n";
  const fs::path a = root / "models/loras/a.safetensors", b = other / "loras/b.safetensors",
                 c = root / "models/checkpoints/c.safetensors";
  fs::copy_file(fixture("models/loras/tiny_lora.safetensors"), a);
  fs::copy_file(fixture("models/loras/tiny_lora.safetensors"), b);
  {  // the same size, one byte different
    std::string bytes;
    std::ifstream in(a, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
    bytes[bytes.size() - 1] ^= 1;
    std::ofstream(c, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const std::string extra = " --extra-model-paths-config " + q(root / "extra.yaml");
  json j = models_json("dedupe" + extra);
  ASSERT_EQ(j["groups"].size(), 1u) << j.dump(1);
  EXPECT_EQ(j["groups"][0]["files"].size(), 2u);
  EXPECT_EQ(j["groups"][0]["sha256"], sha256sum(a));
  EXPECT_EQ(j["reclaimable"], fs::file_size(a));
  EXPECT_EQ(fs::hard_link_count(a), 1u);

  json linked = models_json("dedupe --link" + extra);
  EXPECT_EQ(linked["reclaimed"], fs::file_size(a));
  struct stat sa {}, sb {}, sc {};
  ASSERT_EQ(::stat(a.c_str(), &sa), 0);
  ASSERT_EQ(::stat(b.c_str(), &sb), 0);
  ASSERT_EQ(::stat(c.c_str(), &sc), 0);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_NE(sa.st_ino, sc.st_ino);
  EXPECT_EQ(sha256sum(b), sha256sum(fixture("models/loras/tiny_lora.safetensors")));
  EXPECT_NE(sha256sum(c), sha256sum(a));
  // No temporary name is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(other / "loras"), fs::directory_iterator{}), 1);
  // Now one file with two names: nothing more to reclaim.
  json again = models_json("dedupe" + extra);
  ASSERT_EQ(again["groups"].size(), 1u);
  EXPECT_EQ(again["reclaimable"], 0);
  CliResult human = models("dedupe" + extra);
  EXPECT_NE(human.out.find("reclaimable"), std::string::npos) << human.out;
}


}  // namespace
}  // namespace comfy
