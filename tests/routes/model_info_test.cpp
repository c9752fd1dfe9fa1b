// GET /models/info (handlers/model_info.cpp): a model file's header facts for the web UI's model
// library, on generated files: a kohya LoRA, a checkpoint-named set, a corrupt header, a cached
// SHA-256, and refusals (unknown folder or file, "..", missing parameters).
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>

#include "routes/fixture.h"
#include "store/hash_cache.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

// A safetensors file with zero-filled F32 tensors.
void write_safetensors(const fs::path& p, const json& tensors, const json& metadata) {
  json header = json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (auto& [name, shape] : tensors.items()) {
    uint64_t n = 4;
    for (auto& d : shape) n *= d.get<uint64_t>();
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << text << std::string(offset, '\0');
}

TEST(RouteModelInfo, KohyaLoraMetadataFamilyAndTriggerWords) {
  TestServer s;
  const fs::path loras = s.env.folders->models_directory() / "loras";
  write_safetensors(loras / "fox.safetensors",
                    {{"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", {4, 768}},
                     {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", {320, 4}}},
                    {{"ss_output_name", "fox_style"},
                     {"ss_base_model_version", "sdxl_base_v1-0"},  // the tensors say SD1: they win
                     {"ss_tag_frequency", R"({"10_fox": {"red fox": 12, "snow": 7}, "5_more": {"snow": 9, "tree": 1}})"}});
  HttpResult r = s.get("/api/models/info?folder=loras&filename=fox.safetensors");
  ASSERT_EQ(r.status, 200) << r.body;
  json j = r.json_body();
  EXPECT_EQ(j["kind"], "LoRA");
  EXPECT_EQ(j["family"], "SD15");
  EXPECT_EQ(j["family_from"], "tensors");
  EXPECT_EQ(j["format"], "safetensors");
  EXPECT_EQ(j["tensors"], 2);
  EXPECT_EQ(j["parameters"], 4 * 768 + 320 * 4);
  EXPECT_EQ(j["dtypes"], (json{{"F32", 2}}));
  EXPECT_EQ(j["title"], "fox_style");
  EXPECT_EQ(j["trigger_words"], (json{"snow", "red fox", "tree"}));  // by count over all folders
  EXPECT_EQ(j["metadata"]["ss_base_model_version"], "sdxl_base_v1-0");
  EXPECT_EQ(j["size"], fs::file_size(loras / "fox.safetensors"));
  EXPECT_TRUE(j["sha256"].is_null());  // never hashed here
  EXPECT_TRUE(j["error"].is_null());
}

TEST(RouteModelInfo, FamilyFromMetadataTriggerPhraseAndCachedHash) {
  TestServer s;
  const fs::path file = s.env.folders->models_directory() / "checkpoints" / "sub" / "xl.safetensors";
  write_safetensors(file, {{"first_stage_model.decoder.conv_in.weight", {2, 2}}},
                    {{"modelspec.architecture", "stable-diffusion-xl-v1-base"},
                     {"modelspec.title", "An XL model"},
                     {"modelspec.trigger_phrase", "cat, dog ,  bird"}});
  {
    HashCache cache(s.env.folders->user_directory() / "__comfycpp" / "model_hashes.sqlite");
    cache.digest(file, "sha256", [](const fs::path&) { return std::string("0123456789abcdef"); });
  }
  json j = s.get("/models/info?folder=checkpoints&filename=sub/xl.safetensors").json_body();
  EXPECT_EQ(j["kind"], "checkpoint");
  EXPECT_EQ(j["family"], "SDXL");
  EXPECT_EQ(j["family_from"], "modelspec.architecture");
  EXPECT_EQ(j["title"], "An XL model");
  EXPECT_EQ(j["trigger_words"], (json{"cat", "dog", "bird"}));
  EXPECT_EQ(j["sha256"], "0123456789abcdef");
  EXPECT_EQ(j["autov2"], "0123456789");
}

TEST(RouteModelInfo, CorruptHeaderIsReportedNotFatal) {
  TestServer s;
  const fs::path vae = s.env.folders->models_directory() / "vae";
  fs::create_directories(vae);
  {
    std::ofstream out(vae / "broken.safetensors", std::ios::binary);
    out << std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) << "{}";
  }
  { std::ofstream(vae / "short.safetensors", std::ios::binary) << "abc"; }
  json j = s.get("/models/info?folder=vae&filename=broken.safetensors").json_body();
  ASSERT_TRUE(j["error"].is_string());
  EXPECT_NE(j["error"].get<std::string>().find("header length"), std::string::npos) << j["error"];
  EXPECT_NE(j["error"].get<std::string>().find("broken.safetensors"), std::string::npos);
  EXPECT_TRUE(j["metadata"].is_null());
  EXPECT_EQ(j["kind"], "VAE");
  json k = s.get("/models/info?folder=vae&filename=short.safetensors").json_body();
  EXPECT_NE(k["error"].get<std::string>().find("8-byte"), std::string::npos) << k["error"];
}

TEST(RouteModelInfo, Refusals) {
  TestServer s;
  write_safetensors(s.env.folders->models_directory() / "loras" / "a.safetensors", {{"x", {1}}}, nullptr);
  EXPECT_EQ(s.get("/models/info?folder=loras&filename=a.safetensors").status, 200);
  EXPECT_EQ(s.get("/models/info?folder=loras&filename=nope.safetensors").status, 404);
  EXPECT_EQ(s.get("/models/info?folder=nope&filename=a.safetensors").status, 404);
  EXPECT_EQ(s.get("/models/info?folder=loras").status, 400);
  HttpResult up = s.get("/models/info?folder=loras&filename=..%2F..%2Fuser%2Fx.safetensors");
  EXPECT_EQ(up.status, 400);
  EXPECT_TRUE(up.json_body().contains("error"));
  // The ComfyUI route beside it still answers.
  EXPECT_EQ(s.get("/models/loras").json_body(), (json{"a.safetensors"}));
}

}  // namespace
}  // namespace comfy::testing
