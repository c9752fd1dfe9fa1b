// A workflow's missing-model report: found at the exact path, found by name elsewhere (other
// subfolder, other letter case), found by hash under another name, downloaded from its url, not
// found; UI `models` lists; names that leave the folder.
#include <gtest/gtest.h>

#include <fstream>

#include "models/folder_paths.h"
#include "models/missing_models.h"
#include "models/model_download.h"
#include "nodes/all.h"
#include "support/http_test_server.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;

class MissingModels : public ::testing::Test {
 protected:
  void SetUp() override {
    base = fs::temp_directory_path() / ("comfy_missing_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base);
    auto m = base / "models";
    fs::create_directories(m / "checkpoints" / "sub");
    fs::create_directories(m / "loras");
    fs::create_directories(m / "vae");
    std::ofstream(m / "checkpoints" / "exact.safetensors") << "exact";
    std::ofstream(m / "checkpoints" / "sub" / "Other.safetensors") << "other";
    std::ofstream(m / "loras" / "renamed_by_user.safetensors") << "lora bytes";
    lora_sha = sha256_of_file(m / "loras" / "renamed_by_user.safetensors");
    folders = std::make_unique<FolderPaths>(base);
  }
  void TearDown() override { fs::remove_all(base); }

  const ModelResolution& find(const std::vector<ModelResolution>& rs, const std::string& name) {
    for (auto& r : rs)
      if (r.ref.name == name) return r;
    throw std::runtime_error("no resolution for " + name);
  }

  fs::path base;
  std::unique_ptr<FolderPaths> folders;
  std::string lora_sha;
};

TEST_F(MissingModels, ApiWorkflowReportFindsByPathNameHashAndDownloads) {
  test::HttpTestServer server;
  server.set("/new_vae.safetensors", test::TestResource::file("vae bytes"));
  json body = {
      {"prompt",
       {{"1", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "exact.safetensors"}}}}},
        {"2", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "OTHER.safetensors"}}}}},
        {"3", {{"class_type", "LoraLoader"},
               {"inputs", {{"lora_name", "wanted.safetensors"}, {"model", {"1", 0}}, {"strength_model", 1.0}}}}},
        {"4", {{"class_type", "VAELoader"}, {"inputs", {{"vae_name", "new_vae.safetensors"}}}}},
        {"5", {{"class_type", "UpscaleModelLoader"}, {"inputs", {{"model_name", "nothere.safetensors"}}}}},
        {"6", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "../../etc/passwd"}}}}}}},
      {"extra_data",
       {{"extra_pnginfo",
         {{"workflow",
           {{"nodes", json::array()},
            {"models",
             {{{"name", "wanted.safetensors"}, {"directory", "loras"}, {"hash", lora_sha}, {"hash_type", "sha256"}},
              {{"name", "new_vae.safetensors"}, {"directory", "vae"}, {"url", server.url("/new_vae.safetensors")}}}}}}}}}}};
  std::vector<std::string> warnings;
  auto refs = collect_model_references(body, nullptr, nullptr, &warnings);
  ASSERT_EQ(refs.size(), 6u);

  DownloadOptions o;
  o.retry_delay = std::chrono::milliseconds(1);
  DownloadManager dm(*folders, o);
  ResolveOptions ro;
  ro.download = true;
  ro.downloads = &dm;
  auto rs = resolve_models(refs, *folders, ro);

  EXPECT_EQ(find(rs, "exact.safetensors").status, "found");
  const auto& other = find(rs, "OTHER.safetensors");
  EXPECT_EQ(other.status, "found_elsewhere");
  EXPECT_EQ(other.found_name, "sub/Other.safetensors");
  const auto& lora = find(rs, "wanted.safetensors");
  EXPECT_EQ(lora.status, "found_by_hash");
  EXPECT_EQ(lora.found_name, "renamed_by_user.safetensors");
  const auto& vae = find(rs, "new_vae.safetensors");
  EXPECT_EQ(vae.status, "downloaded") << vae.message;
  EXPECT_TRUE(fs::exists(base / "models" / "vae" / "new_vae.safetensors"));
  const auto& upscale = find(rs, "nothere.safetensors");
  EXPECT_EQ(upscale.status, "missing");
  EXPECT_EQ(upscale.ref.folder, "upscale_models");
  EXPECT_EQ(find(rs, "../../etc/passwd").status, "invalid");

  json report = missing_models_report(rs, warnings);
  EXPECT_EQ(report["missing"], 2);  // nothere + the invalid name
}

TEST_F(MissingModels, WithoutDownloadAUrlIsReportedNotFetched) {
  json prompt = {{"4", {{"class_type", "VAELoader"}, {"inputs", {{"vae_name", "new_vae.safetensors"}}}}}};
  auto refs = collect_model_references(prompt, nullptr, nullptr);
  ASSERT_EQ(refs.size(), 1u);
  refs[0].url = "http://127.0.0.1:9/new_vae.safetensors";
  auto rs = resolve_models(refs, *folders, ResolveOptions{});
  EXPECT_EQ(rs[0].status, "missing");
  EXPECT_NE(rs[0].message.find("can be downloaded from"), std::string::npos);
  EXPECT_FALSE(fs::exists(base / "models" / "vae" / "new_vae.safetensors"));
}

TEST_F(MissingModels, UiWorkflowModelsListsAreRead) {
  json ui = json::parse(R"({
    "last_node_id": 2,
    "nodes": [
      {"id": 1, "type": "SomeCustomLoader",
       "properties": {"models": [{"name": "exact.safetensors", "directory": "checkpoints", "url": "https://x/y"}]}},
      {"id": 2, "type": "CLIPLoader",
       "properties": {"models": [{"name": "t5.safetensors", "directory": "clip"}]}}
    ],
    "links": [],
    "models": [{"name": "Exact.SAFETENSORS", "directory": "checkpoints"}]
  })");
  std::vector<std::string> warnings;
  auto refs = collect_model_references(ui, nullptr, nullptr, &warnings);
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_FALSE(warnings.empty());  // no registry: loader inputs were not read
  auto rs = resolve_models(refs, *folders, ResolveOptions{});
  EXPECT_EQ(find(rs, "exact.safetensors").status, "found");
  EXPECT_EQ(find(rs, "exact.safetensors").ref.nodes, std::vector<std::string>{"1"});
  EXPECT_EQ(find(rs, "Exact.SAFETENSORS").status, "found_elsewhere");
  const auto& t5 = find(rs, "t5.safetensors");
  EXPECT_EQ(t5.ref.folder, "text_encoders");  // the legacy name mapped
  EXPECT_EQ(t5.status, "missing");
}

TEST_F(MissingModels, WrongHashIsNotAMatch) {
  ModelReference ref{"loras", "wanted.safetensors", "", std::string(64, 'a'), "sha256", {}, {}};
  auto rs = resolve_models({ref}, *folders, ResolveOptions{});
  EXPECT_EQ(rs[0].status, "missing");
}

TEST_F(MissingModels, UiWorkflowLoaderWidgetsUseTheRegistrysFolders) {
  Registry registry;
  register_all_nodes(registry);
  Services services;
  services.folders = folders.get();
  services.list_folder = [f = folders.get()](const std::string& name) { return f->get_filename_list(name); };
  json ui = json::parse(R"({
    "last_node_id": 2, "last_link_id": 0, "version": 0.4, "links": [],
    "nodes": [
      {"id": 1, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [], "outputs": [],
       "widgets_values": ["sub\\other.safetensors"], "properties": {}},
      {"id": 2, "type": "UpscaleModelLoader", "mode": 0, "inputs": [], "outputs": [],
       "widgets_values": ["4x.safetensors"],
       "properties": {"models": [{"name": "4x.safetensors", "directory": "upscale_models",
                                   "url": "https://example.invalid/4x.safetensors"}]}}
    ]
  })");
  std::vector<std::string> warnings;
  auto refs = collect_model_references(ui, &registry, &services, &warnings);
  EXPECT_TRUE(warnings.empty()) << warnings.front();
  ASSERT_EQ(refs.size(), 2u);
  auto rs = resolve_models(refs, *folders, ResolveOptions{});
  const auto& ckpt = find(rs, "sub\\other.safetensors");
  EXPECT_EQ(ckpt.ref.folder, "checkpoints");
  EXPECT_EQ(ckpt.ref.inputs, std::vector<std::string>{"1.ckpt_name"});
  EXPECT_EQ(ckpt.status, "found_elsewhere");  // a Windows path, another letter case
  EXPECT_EQ(ckpt.found_name, "sub/Other.safetensors");
  const auto& up = find(rs, "4x.safetensors");
  EXPECT_EQ(up.ref.folder, "upscale_models");
  EXPECT_EQ(up.ref.url, "https://example.invalid/4x.safetensors");
  EXPECT_EQ(up.status, "missing");
}

}  // namespace
}  // namespace comfy
