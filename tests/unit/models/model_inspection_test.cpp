// models/model_inspection.h: the header rules `comfycpp models info` and GET /models/info share:
// folder kinds, each family rule, trigger words and titles, and the safetensors header reader's
// refusals.
#include "models/model_inspection.h"

#include <gtest/gtest.h>

#include <fstream>
#include <utility>

#include <unistd.h>

#include "core/error.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;

TensorEntry t(const std::string& name, std::vector<int64_t> shape = {4, 4}) { return {name, "F16", std::move(shape)}; }

TEST(ModelInspection, KindOfFolderUsesComfyFolderNamesAndLegacyNames) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"loras", "LoRA"},           {"checkpoints", "checkpoint"},         {"vae", "VAE"},
      {"unet", "diffusion model"}, {"diffusion_models", "diffusion model"}, {"clip", "text encoder"},
      {"upscale_models", "upscaler"}, {"model_patches", "model patch"},   {"my_things", "my_things"},
  };
  for (const auto& [folder, kind] : cases) EXPECT_EQ(kind_of_folder(folder), kind) << folder;
  EXPECT_EQ(lower_extension("sub/Model.SafeTensors"), ".safetensors");
  EXPECT_EQ(lower_extension("noext"), "");
}

TEST(ModelInspection, FamilyFromTensorNames) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", "SDXL"},
      {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", "SDXL"},
      {"conditioner.embedders.1.model.ln_final.weight", "SDXL"},
      {"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", "Flux"},
      {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight", "Flux"},
      {"diffusion_model.joint_blocks.0.x_block.attn.qkv.lora_down.weight", "SD3"},
      {"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", ""},  // SD1's text encoder says nothing
  };
  for (const auto& [name, family] : cases) EXPECT_EQ(family_from_tensors({t(name)}), family) << name;
  EXPECT_EQ(family_from_tensors({}), "");
}

TEST(ModelInspection, FamilyFromCrossAttentionWidth) {
  const std::string kohya = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight";
  const std::string peft = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight";
  const std::string full = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight";
  EXPECT_EQ(family_from_tensors({t(kohya, {4, 768})}), "SD15");
  EXPECT_EQ(family_from_tensors({t(peft, {8, 1024})}), "SD20");
  EXPECT_EQ(family_from_tensors({t(full, {320, 2048})}), "SDXL");
  // The up weight (width = rank) and unknown widths do not count; a later known width does.
  EXPECT_EQ(family_from_tensors({t("x_attn2_to_k.lora_up.weight", {320, 4})}), "");
  EXPECT_EQ(family_from_tensors({t(kohya, {4, 4096}), t(peft, {4, 1024})}), "SD20");
  // A name rule anywhere beats the width.
  EXPECT_EQ(family_from_tensors({t(kohya, {4, 768}), t("lora_unet_joint_blocks_0.lora_down.weight")}), "SD3");
}

TEST(ModelInspection, LoraFamilyFallsBackToMetadataInOrder) {
  const std::vector<TensorEntry> none = {t("lora_unet_mid_block.lora_down.weight")};
  EXPECT_EQ(lora_family(none, json{{"ss_base_model_version", "sdxl_base_v1-0"}}).family, "SDXL");
  EXPECT_EQ(lora_family(none, json{{"ss_base_model_version", "sdxl_base_v1-0"}}).from, "ss_base_model_version");
  const FamilyGuess both = lora_family(none, json{{"ss_base_model_version", "sd_v1"},
                                                  {"modelspec.architecture", "stable-diffusion-v3-medium/lora"}});
  EXPECT_EQ(both.family, "SD3");
  EXPECT_EQ(both.from, "modelspec.architecture");
  EXPECT_EQ(lora_family(none, json{{"ss_sd_model_name", "v2-1_768-ema-pruned.safetensors"}}).family, "SD20");
  EXPECT_EQ(lora_family(none, json{{"ss_sd_model_name", "flux1-dev.safetensors"}}).family, "Flux");
  const FamilyGuess tensors = lora_family({t("a_attn2_to_k.lora_down.weight", {4, 768})}, json{{"ss_base_model_version", "sdxl"}});
  EXPECT_EQ(tensors.family, "SD15");
  EXPECT_EQ(tensors.from, "tensors");
  EXPECT_EQ(lora_family(none, json::object()).family, "");
  EXPECT_EQ(lora_family(none, json()).from, "");
}

TEST(ModelInspection, FamilyFromText) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"FLUX.1-dev", "Flux"}, {"stable-diffusion-xl-v1-base", "SDXL"}, {"sd_v1", "SD15"}, {"sd2.1", "SD20"}, {"pony", ""},
  };
  for (const auto& [text, family] : cases) EXPECT_EQ(family_from_text(text), family) << text;
}

TEST(ModelInspection, TriggerWordsAndTitle) {
  EXPECT_EQ(trigger_words(json{{"modelspec.trigger_phrase", " cat, dog ,,bird "}}), (json{"cat", "dog", "bird"}));
  // Tag counts summed over training folders, most frequent first; the phrase wins when given.
  const json kohya = {{"ss_tag_frequency", R"({"10_a": {"x": 2, "y": 5}, "3_b": {"x": 4, "z": 1}})"}};
  EXPECT_EQ(trigger_words(kohya), (json{"x", "y", "z"}));
  json both = kohya;
  both["modelspec.trigger_phrase"] = "only";
  EXPECT_EQ(trigger_words(both), (json{"only"}));
  EXPECT_EQ(trigger_words(json{{"ss_tag_frequency", "not json"}}), json::array());
  EXPECT_EQ(trigger_words(json()), json::array());
  EXPECT_EQ(model_title(json{{"ss_output_name", "fox"}, {"modelspec.title", "Fox"}}), "Fox");
  EXPECT_EQ(model_title(json{{"ss_output_name", "fox"}}), "fox");
  EXPECT_TRUE(model_title(json::object()).is_null());
}

class ModelInspectionHeader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("model_inspection_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path write(const std::string& name, uint64_t declared, const std::string& body) {
    const fs::path p = dir_ / name;
    std::ofstream out(p, std::ios::binary);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((declared >> (8 * i)) & 0xff));
    out << body;
    return p;
  }
  fs::path write(const std::string& name, const std::string& header) { return write(name, header.size(), header); }
  std::string error_of(const fs::path& p) {
    try {
      read_safetensors_header(p);
    } catch (const ComfyError& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(ModelInspectionHeader, ReadsTensorsInOrderAndMetadata) {
  const fs::path p = write("ok.safetensors",
                           R"({"__metadata__": {"ss_output_name": "fox"}, "b": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]},)"
                           R"( "a": {"dtype": "F32", "shape": [], "data_offsets": [12, 16]}})");
  const SafetensorsHeader h = read_safetensors_header(p);
  EXPECT_EQ(h.metadata, (json{{"ss_output_name", "fox"}}));
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "b");
  EXPECT_EQ(h.tensors[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].dtype, "F32");
  const TensorSummary s = summarize_tensors(h.tensors);
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.parameters, 7);
  EXPECT_EQ(s.dtypes, (std::map<std::string, int64_t>{{"F16", 1}, {"F32", 1}}));
}

TEST_F(ModelInspectionHeader, RefusesBrokenHeadersNamingTheFile) {
  std::ofstream(dir_ / "tiny.safetensors") << "abc";
  EXPECT_NE(error_of(dir_ / "tiny.safetensors").find("8-byte"), std::string::npos);
  EXPECT_NE(error_of(dir_ / "tiny.safetensors").find("tiny.safetensors"), std::string::npos);
  const std::string too_long = error_of(write("long.safetensors", 1000, "{}"));
  EXPECT_NE(too_long.find("header length 1000"), std::string::npos) << too_long;
  EXPECT_NE(too_long.find("long.safetensors"), std::string::npos);
  EXPECT_NE(error_of(write("huge.safetensors", uint64_t{1} << 62, "{}")).find("does not fit"), std::string::npos);
  EXPECT_NE(error_of(write("array.safetensors", "[1, 2]")).find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(write("nodtype.safetensors", R"({"w": {"shape": [2]}})")).find("tensor 'w'"), std::string::npos);
  EXPECT_NE(error_of(write("negshape.safetensors", R"({"w": {"dtype": "F32", "shape": [-1]}})")).find("tensor 'w'"),
            std::string::npos);
  EXPECT_EQ(error_of(write("empty.safetensors", "{}")), "");
  EXPECT_NE(error_of(write("zero.safetensors", 0, "")).find("not a JSON object"), std::string::npos);
}

}  // namespace
}  // namespace comfy
