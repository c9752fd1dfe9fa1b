// ComfyUI folder_paths behaviour (spec sections 5.1-5.8 and 9.2).
#include "models/folder_paths.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"

namespace fs = std::filesystem;
using comfy::ComfyError;

using Paths = std::vector<fs::path>;
using Names = std::vector<std::string>;

namespace {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    std::mt19937_64 gen(rd());
    path_ = fs::temp_directory_path() / ("folder_paths_test_" + std::to_string(gen()));
    fs::create_directories(path_);
    // Work with the canonical form so expectations are plain string concatenations.
    path_ = fs::canonical(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_file(const fs::path& p, const std::string& content = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// Sets a directory's mtime well into the past, so a later change in the same clock tick is still
// a visible mtime change.
void age(const fs::path& dir) { fs::last_write_time(dir, fs::file_time_type::clock::now() - std::chrono::hours(1)); }

class EnvVar {
 public:
  EnvVar(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~EnvVar() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class FolderPaths : public ::testing::Test {
 protected:
  TempDir tmp;
  std::string base() const { return tmp.str(); }
  fs::path p(const std::string& rel) const { return fs::path(tmp.str() + "/" + rel); }
  fs::path write_yaml(const std::string& rel, const std::string& text) const {
    fs::path f = p(rel);
    write_file(f, text);
    return f;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// 5.1 base paths

TEST_F(FolderPaths, DefaultDirectoriesLiveUnderTheBase) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_EQ(fp.base_directory(), fs::path(base()));
  EXPECT_EQ(fp.models_directory(), fs::path(base() + "/models"));
  EXPECT_EQ(fp.input_directory(), fs::path(base() + "/input"));
  EXPECT_EQ(fp.output_directory(), fs::path(base() + "/output"));
  EXPECT_EQ(fp.temp_directory(), fs::path(base() + "/temp"));
  EXPECT_EQ(fp.user_directory(), fs::path(base() + "/user"));
}

TEST_F(FolderPaths, InputDirectoryIsCreatedAtStartup) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_TRUE(fs::is_directory(base() + "/input"));
}

TEST_F(FolderPaths, BaseDirectoryIsMadeAbsoluteAndNormalised) {
  fs::create_directories(p("a"));
  comfy::FolderPaths fp(fs::path(base() + "/a/../b/./"));
  EXPECT_EQ(fp.base_directory(), fs::path(base() + "/b"));
  EXPECT_EQ(fp.models_directory(), fs::path(base() + "/b/models"));
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{base() + "/b/models/checkpoints"}));
}

TEST_F(FolderPaths, DirectoryOverridesAreMadeAbsolute) {
  comfy::FolderPaths fp(tmp.path());
  fp.set_input_directory(base() + "/in/x/..");
  fp.set_output_directory(base() + "/out/");
  fp.set_user_directory(base() + "/./usr");
  EXPECT_EQ(fp.input_directory(), fs::path(base() + "/in"));
  EXPECT_EQ(fp.output_directory(), fs::path(base() + "/out"));
  EXPECT_EQ(fp.user_directory(), fs::path(base() + "/usr"));
}

TEST_F(FolderPaths, TempDirectoryOverrideAppendsTemp) {
  comfy::FolderPaths fp(tmp.path());
  fp.set_temp_directory(base() + "/scratch");
  EXPECT_EQ(fp.temp_directory(), fs::path(base() + "/scratch/temp"));
}

TEST_F(FolderPaths, DirectoryByType) {
  comfy::FolderPaths fp(tmp.path());
  fp.set_output_directory(base() + "/o");
  EXPECT_EQ(fp.directory_by_type("input"), fs::path(base() + "/input"));
  EXPECT_EQ(fp.directory_by_type("output"), fs::path(base() + "/o"));
  EXPECT_EQ(fp.directory_by_type("temp"), fs::path(base() + "/temp"));
  EXPECT_EQ(fp.directory_by_type("user"), std::nullopt);
  EXPECT_EQ(fp.directory_by_type("models"), std::nullopt);
  EXPECT_EQ(fp.directory_by_type(""), std::nullopt);
}

TEST_F(FolderPaths, OutputModelFoldersAreAppendedAsSearchPaths) {
  comfy::FolderPaths fp(tmp.path());
  fp.set_output_directory(base() + "/out");
  fp.add_output_model_folders();
  const std::string m = base() + "/models/";
  const std::string o = base() + "/out/";
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints", o + "checkpoints"}));
  EXPECT_EQ(fp.get_folder_paths("text_encoders"), (Paths{m + "text_encoders", m + "clip", o + "clip"}));
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae", o + "vae"}));
  EXPECT_EQ(fp.get_folder_paths("diffusion_models"), (Paths{m + "unet", m + "diffusion_models", o + "diffusion_models"}));
  EXPECT_EQ(fp.get_folder_paths("loras"), (Paths{m + "loras", o + "loras"}));
  EXPECT_EQ(fp.get_folder_paths("embeddings"), (Paths{m + "embeddings"}));
}

// ---------------------------------------------------------------------------------------------
// 5.2 folder table

TEST_F(FolderPaths, FolderTableHasEveryFolderInOrder) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_EQ(fp.folder_names(),
            (Names{"checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                   "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
                   "latent_upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
                   "model_patches", "audio_encoders"}));
}

TEST_F(FolderPaths, FolderTableDefaultDirectories) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints"}));
  EXPECT_EQ(fp.get_folder_paths("configs"), (Paths{m + "configs"}));
  EXPECT_EQ(fp.get_folder_paths("loras"), (Paths{m + "loras"}));
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae"}));
  EXPECT_EQ(fp.get_folder_paths("text_encoders"), (Paths{m + "text_encoders", m + "clip"}));
  EXPECT_EQ(fp.get_folder_paths("diffusion_models"), (Paths{m + "unet", m + "diffusion_models"}));
  EXPECT_EQ(fp.get_folder_paths("clip_vision"), (Paths{m + "clip_vision"}));
  EXPECT_EQ(fp.get_folder_paths("style_models"), (Paths{m + "style_models"}));
  EXPECT_EQ(fp.get_folder_paths("embeddings"), (Paths{m + "embeddings"}));
  EXPECT_EQ(fp.get_folder_paths("diffusers"), (Paths{m + "diffusers"}));
  EXPECT_EQ(fp.get_folder_paths("vae_approx"), (Paths{m + "vae_approx"}));
  EXPECT_EQ(fp.get_folder_paths("controlnet"), (Paths{m + "controlnet", m + "t2i_adapter"}));
  EXPECT_EQ(fp.get_folder_paths("gligen"), (Paths{m + "gligen"}));
  EXPECT_EQ(fp.get_folder_paths("upscale_models"), (Paths{m + "upscale_models"}));
  EXPECT_EQ(fp.get_folder_paths("latent_upscale_models"), (Paths{m + "latent_upscale_models"}));
  EXPECT_EQ(fp.get_folder_paths("custom_nodes"), (Paths{base() + "/custom_nodes"}));
  EXPECT_EQ(fp.get_folder_paths("hypernetworks"), (Paths{m + "hypernetworks"}));
  EXPECT_EQ(fp.get_folder_paths("photomaker"), (Paths{m + "photomaker"}));
  EXPECT_EQ(fp.get_folder_paths("classifiers"), (Paths{m + "classifiers"}));
  EXPECT_EQ(fp.get_folder_paths("model_patches"), (Paths{m + "model_patches"}));
  EXPECT_EQ(fp.get_folder_paths("audio_encoders"), (Paths{m + "audio_encoders"}));
}

TEST_F(FolderPaths, FolderTableExtensionSets) {
  comfy::FolderPaths fp(tmp.path());
  const std::set<std::string> pt = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"};
  for (const char* f : {"checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                        "style_models", "embeddings", "vae_approx", "controlnet", "gligen", "upscale_models",
                        "latent_upscale_models", "hypernetworks", "photomaker", "model_patches", "audio_encoders"}) {
    EXPECT_EQ(fp.extensions(f), pt) << f;
  }
  EXPECT_EQ(fp.extensions("configs"), (std::set<std::string>{".yaml"}));
  EXPECT_EQ(fp.extensions("diffusers"), (std::set<std::string>{"folder"}));
  EXPECT_EQ(fp.extensions("classifiers"), (std::set<std::string>{""}));
  EXPECT_EQ(fp.extensions("custom_nodes"), (std::set<std::string>{}));
}

TEST_F(FolderPaths, LegacyAliases) {
  EXPECT_EQ(comfy::FolderPaths::map_legacy("clip"), "text_encoders");
  EXPECT_EQ(comfy::FolderPaths::map_legacy("unet"), "diffusion_models");
  EXPECT_EQ(comfy::FolderPaths::map_legacy("vae"), "vae");
  EXPECT_EQ(comfy::FolderPaths::map_legacy("CLIP"), "CLIP");

  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  EXPECT_TRUE(fp.has_folder("clip"));
  EXPECT_TRUE(fp.has_folder("unet"));
  EXPECT_FALSE(fp.has_folder("nope"));
  EXPECT_EQ(fp.get_folder_paths("clip"), (Paths{m + "text_encoders", m + "clip"}));
  EXPECT_EQ(fp.get_folder_paths("unet"), (Paths{m + "unet", m + "diffusion_models"}));
  EXPECT_EQ(fp.extensions("unet").count(".safetensors"), 1u);

  fp.add_model_folder_path("clip", base() + "/more_clip");
  EXPECT_EQ(fp.get_folder_paths("text_encoders"), (Paths{m + "text_encoders", m + "clip", base() + "/more_clip"}));
  // no folder called "clip" was created
  EXPECT_EQ(fp.folder_names().size(), 21u);

  write_file(p("models/clip/t5.safetensors"));
  write_file(p("models/unet/flux.sft"));
  EXPECT_EQ(fp.get_filename_list("clip"), (Names{"t5.safetensors"}));
  EXPECT_EQ(fp.get_filename_list("unet"), (Names{"flux.sft"}));
  EXPECT_EQ(fp.get_full_path("clip", "t5.safetensors"), fs::path(m + "clip/t5.safetensors"));
  EXPECT_EQ(fp.get_full_path("unet", "flux.sft"), fs::path(m + "unet/flux.sft"));
}

TEST_F(FolderPaths, AddModelFolderPathAppendsAndIgnoresDuplicates) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  fp.add_model_folder_path("loras", "/data/loras");
  fp.add_model_folder_path("loras", "/data/more");
  fp.add_model_folder_path("loras", "/data/loras");
  fp.add_model_folder_path("loras", m + "loras");
  EXPECT_EQ(fp.get_folder_paths("loras"), (Paths{m + "loras", "/data/loras", "/data/more"}));
}

TEST_F(FolderPaths, AddModelFolderPathIsDefaultInsertsOrMovesToFront) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  fp.add_model_folder_path("vae", "/a");
  fp.add_model_folder_path("vae", "/b");
  fp.add_model_folder_path("vae", "/b", true);  // moved to front
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{"/b", m + "vae", "/a"}));
  fp.add_model_folder_path("vae", "/c", true);  // inserted at front
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{"/c", "/b", m + "vae", "/a"}));
  fp.add_model_folder_path("vae", "/c", true);  // already first: unchanged
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{"/c", "/b", m + "vae", "/a"}));
}

TEST_F(FolderPaths, UnknownFolderGetsNewEntryAcceptingEveryFile) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_FALSE(fp.has_folder("my_stuff"));
  fp.add_model_folder_path("my_stuff", p("stuff"));
  EXPECT_TRUE(fp.has_folder("my_stuff"));
  EXPECT_EQ(fp.folder_names().back(), "my_stuff");
  EXPECT_EQ(fp.get_folder_paths("my_stuff"), (Paths{base() + "/stuff"}));
  EXPECT_EQ(fp.extensions("my_stuff"), (std::set<std::string>{}));
  write_file(p("stuff/readme.txt"));
  write_file(p("stuff/noext"));
  write_file(p("stuff/w.safetensors"));
  EXPECT_EQ(fp.get_filename_list("my_stuff"), (Names{"noext", "readme.txt", "w.safetensors"}));
}

TEST_F(FolderPaths, UnknownFolderQueriesAreEmpty) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_EQ(fp.get_folder_paths("nope"), Paths{});
  EXPECT_EQ(fp.get_filename_list("nope"), Names{});
  EXPECT_EQ(fp.get_full_path("nope", "a.pt"), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// 5.3 extra_model_paths.yaml

TEST_F(FolderPaths, ExtraModelPathsBasePathRelativeToYamlDirectory) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("conf/extra.yaml",
                         "comfyui:\n"
                         "  base_path: ../shared\n"
                         "  checkpoints: models/checkpoints/\n"
                         "  vae: /abs/vae\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints", base() + "/shared/models/checkpoints"}));
  // an absolute value ignores base_path (os.path.join)
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae", "/abs/vae"}));
}

TEST_F(FolderPaths, ExtraModelPathsWithoutBasePathResolveAgainstYamlDirectory) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("conf/extra.yaml",
                         "mine:\n"
                         "  loras: my_loras\n"
                         "  vae: ../elsewhere/./vae\n"
                         "  embeddings: /abs//emb/\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("loras"), (Paths{m + "loras", base() + "/conf/my_loras"}));
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae", base() + "/elsewhere/vae"}));
  EXPECT_EQ(fp.get_folder_paths("embeddings"), (Paths{m + "embeddings", "/abs/emb"}));
}

TEST_F(FolderPaths, ExtraModelPathsAbsoluteBasePathAndNormalisation) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "s:\n"
                         "  base_path: /srv/comfy/\n"
                         "  checkpoints: models/x/../checkpoints\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints", "/srv/comfy/models/checkpoints"}));
}

TEST_F(FolderPaths, ExtraModelPathsExpandsHomeAndEnvironmentInBasePath) {
  EnvVar home("HOME", base() + "/home");
  EnvVar var("FOLDER_PATHS_TEST_ROOT", "/mnt/models");
  unsetenv("FOLDER_PATHS_TEST_UNSET");
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "a:\n"
                         "  base_path: ~/comfy\n"
                         "  checkpoints: ckpt\n"
                         "b:\n"
                         "  base_path: $FOLDER_PATHS_TEST_ROOT/b\n"
                         "  checkpoints: ckpt\n"
                         "c:\n"
                         "  base_path: ${FOLDER_PATHS_TEST_ROOT}/c\n"
                         "  checkpoints: ckpt\n"
                         "d:\n"
                         "  base_path: /x/$FOLDER_PATHS_TEST_UNSET\n"
                         "  checkpoints: ckpt\n"
                         "e:\n"
                         "  base_path: \"~\"\n"
                         "  checkpoints: $HOME\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("checkpoints"),
            (Paths{m + "checkpoints", base() + "/home/comfy/ckpt", "/mnt/models/b/ckpt", "/mnt/models/c/ckpt",
                   "/x/$FOLDER_PATHS_TEST_UNSET/ckpt",
                   // folder values are not expanded
                   base() + "/home/$HOME"}));
}

TEST_F(FolderPaths, ExtraModelPathsIsDefaultGoesFirst) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  fp.add_model_folder_path("loras", "/shared/loras");
  auto yaml = write_yaml("extra.yaml",
                         "other:\n"
                         "  base_path: /other\n"
                         "  loras: loras\n"
                         "primary:\n"
                         "  base_path: /shared\n"
                         "  is_default: true\n"
                         "  loras: loras\n"
                         "  checkpoints: |\n"
                         "    ckpt_a\n"
                         "    ckpt_b\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("loras"), (Paths{"/shared/loras", m + "loras", "/other/loras"}));
  // each default path is inserted at the front in turn, so the last line ends up first
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{"/shared/ckpt_b", "/shared/ckpt_a", m + "checkpoints"}));
}

TEST_F(FolderPaths, ExtraModelPathsIsDefaultFalseAppends) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "s:\n"
                         "  is_default: false\n"
                         "  base_path: /b\n"
                         "  vae: v\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae", "/b/v"}));
}

TEST_F(FolderPaths, A111SectionAndMultilineValues) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "a111:\n"
                         "    base_path: /sd/webui/\n"
                         "\n"
                         "    checkpoints: models/Stable-diffusion\n"
                         "    configs: models/Stable-diffusion\n"
                         "    vae: models/VAE\n"
                         "    loras: |\n"
                         "         models/Lora\n"
                         "\n"
                         "         models/LyCORIS\n"
                         "    upscale_models: |\n"
                         "                  models/ESRGAN\n"
                         "                  models/RealESRGAN\n"
                         "                  models/SwinIR\n"
                         "    embeddings: embeddings\n"
                         "    hypernetworks: models/hypernetworks\n"
                         "    controlnet: models/ControlNet\n");
  fp.load_extra_model_paths(yaml);
  const std::string w = "/sd/webui/";
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints", w + "models/Stable-diffusion"}));
  EXPECT_EQ(fp.get_folder_paths("configs"), (Paths{m + "configs", w + "models/Stable-diffusion"}));
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae", w + "models/VAE"}));
  EXPECT_EQ(fp.get_folder_paths("loras"), (Paths{m + "loras", w + "models/Lora", w + "models/LyCORIS"}));
  EXPECT_EQ(fp.get_folder_paths("upscale_models"),
            (Paths{m + "upscale_models", w + "models/ESRGAN", w + "models/RealESRGAN", w + "models/SwinIR"}));
  EXPECT_EQ(fp.get_folder_paths("embeddings"), (Paths{m + "embeddings", w + "embeddings"}));
  EXPECT_EQ(fp.get_folder_paths("hypernetworks"), (Paths{m + "hypernetworks", w + "models/hypernetworks"}));
  EXPECT_EQ(fp.get_folder_paths("controlnet"),
            (Paths{m + "controlnet", m + "t2i_adapter", w + "models/ControlNet"}));
  EXPECT_EQ(fp.folder_names().size(), 21u);  // "a111" is a section, not a folder
}

TEST_F(FolderPaths, ExtraModelPathsHashInsideBlockIsLiteral) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "comfyui:\n"
                         "  base_path: /c/\n"
                         "  text_encoders: |\n"
                         "    models/text_encoders/\n"
                         "    models/clip/  # legacy location still supported\n"
                         "  vae: models/vae  # a real comment on a plain scalar\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("text_encoders"),
            (Paths{m + "text_encoders", m + "clip", "/c/models/text_encoders",
                   "/c/models/clip/  # legacy location still supported"}));
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae", "/c/models/vae"}));
}

TEST_F(FolderPaths, ExtraModelPathsNullSectionIsSkipped) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "empty:\n"
                         "commented:\n"
                         "#  checkpoints: /nope\n"
                         "tilde: ~\n"
                         "real:\n"
                         "  checkpoints: /yes\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints", "/yes"}));
}

TEST_F(FolderPaths, ExtraModelPathsLegacyKeysAndNewFolders) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  auto yaml = write_yaml("extra.yaml",
                         "s:\n"
                         "  base_path: /b\n"
                         "  clip: c\n"
                         "  unet: u\n"
                         "  ipadapter: ipa\n");
  fp.load_extra_model_paths(yaml);
  EXPECT_EQ(fp.get_folder_paths("text_encoders"), (Paths{m + "text_encoders", m + "clip", "/b/c"}));
  EXPECT_EQ(fp.get_folder_paths("diffusion_models"), (Paths{m + "unet", m + "diffusion_models", "/b/u"}));
  EXPECT_TRUE(fp.has_folder("ipadapter"));
  EXPECT_EQ(fp.folder_names().back(), "ipadapter");
  EXPECT_EQ(fp.get_folder_paths("ipadapter"), (Paths{"/b/ipa"}));
  EXPECT_EQ(fp.extensions("ipadapter"), (std::set<std::string>{}));
}

TEST_F(FolderPaths, ExtraModelPathsMissingFileThrowsRuntimeError) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_THROW(fp.load_extra_model_paths(p("does_not_exist.yaml")), std::runtime_error);
  fs::create_directories(p("a_directory.yaml"));
  EXPECT_THROW(fp.load_extra_model_paths(p("a_directory.yaml")), std::runtime_error);
}

TEST_F(FolderPaths, ExtraModelPathsMalformedFileThrowsAndChangesNothing) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  const std::vector<std::string> bad = {
      "a: [unclosed\n",                                   // YAML syntax error
      "just a string\n",                                  // not a mapping
      "",                                                 // empty document
      "- a\n- b\n",                                       // a list
      "s: a string section\n",                            // section is not a mapping
      "s:\n  checkpoints: /ok\nt:\n  vae: [1, 2]\n",      // folder value is a list
      "s:\n  checkpoints: /ok\n  vae:\n",                 // folder value is null
      "s:\n  base_path:\n  checkpoints: x\n",             // base_path is null
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    auto yaml = write_yaml("bad" + std::to_string(i) + ".yaml", bad[i]);
    try {
      fp.load_extra_model_paths(yaml);
      ADD_FAILURE() << "no exception for: " << bad[i];
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("bad" + std::to_string(i) + ".yaml"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(fp.get_folder_paths("checkpoints"), (Paths{m + "checkpoints"}));
  EXPECT_EQ(fp.get_folder_paths("vae"), (Paths{m + "vae"}));
}

// ---------------------------------------------------------------------------------------------
// 5.4 listing

TEST_F(FolderPaths, ListsRecursivelyWithForwardSlashes) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/loras/top.safetensors"));
  write_file(p("models/loras/style/anime/deep.safetensors"));
  write_file(p("models/loras/style/flat.pt"));
  EXPECT_EQ(fp.get_filename_list("loras"),
            (Names{"style/anime/deep.safetensors", "style/flat.pt", "top.safetensors"}));
}

TEST_F(FolderPaths, ListingFiltersByLowerCasedExtension) {
  comfy::FolderPaths fp(tmp.path());
  for (const char* f : {"a.SAFETENSORS", "b.Ckpt", "c.pt2", "d.bin", "e.pth", "f.pkl", "g.sft", "h.pt", "i.txt",
                        "j.safetensors.part", "k", ".pt", "l.yaml"}) {
    write_file(p(std::string("models/checkpoints/") + f));
  }
  EXPECT_EQ(fp.get_filename_list("checkpoints"),
            (Names{"a.SAFETENSORS", "b.Ckpt", "c.pt2", "d.bin", "e.pth", "f.pkl", "g.sft", "h.pt"}));
  write_file(p("models/configs/v1.yaml"));
  write_file(p("models/configs/v1.YAML"));
  write_file(p("models/configs/v1.yml"));
  EXPECT_EQ(fp.get_filename_list("configs"), (Names{"v1.YAML", "v1.yaml"}));
}

TEST_F(FolderPaths, ListingSkipsGitDirectoriesButNotHiddenFiles) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/vae/.git/objects/x.pt"));
  write_file(p("models/vae/sub/.git/y.pt"));
  write_file(p("models/vae/.hidden/z.pt"));
  write_file(p("models/vae/.secret.pt"));
  write_file(p("models/vae/git/ok.pt"));
  write_file(p("models/vae/.gitkeep.pt"));
  EXPECT_EQ(fp.get_filename_list("vae"), (Names{".gitkeep.pt", ".hidden/z.pt", ".secret.pt", "git/ok.pt"}));
}

TEST_F(FolderPaths, ListingFollowsSymlinks) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("elsewhere/dir/linked.safetensors"));
  write_file(p("elsewhere/file.safetensors"));
  fs::create_directories(p("models/checkpoints"));
  fs::create_directory_symlink(p("elsewhere/dir"), p("models/checkpoints/linkdir"));
  fs::create_symlink(p("elsewhere/file.safetensors"), p("models/checkpoints/link.safetensors"));
  // a symlink cycle does not hang the listing
  fs::create_directory_symlink(p("models/checkpoints"), p("models/checkpoints/linkdir_loop"));
  auto list = fp.get_filename_list("checkpoints");
  EXPECT_EQ(list, (Names{"link.safetensors", "linkdir/linked.safetensors"}));
}

TEST_F(FolderPaths, ListingIsUnionAcrossDirectoriesSortedByCodePoint) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/text_encoders/b.safetensors"));
  write_file(p("models/text_encoders/shared.safetensors"));
  write_file(p("models/clip/shared.safetensors"));
  write_file(p("models/clip/B.safetensors"));
  write_file(p("models/clip/_u.safetensors"));
  write_file(p("models/clip/\xC3\xA9.safetensors"));  // "é"
  write_file(p("models/clip/z.safetensors"));
  write_file(p("models/clip/a/x.safetensors"));
  write_file(p("models/clip/a.safetensors"));
  write_file(p("models/clip/a-b.safetensors"));
  EXPECT_EQ(fp.get_filename_list("text_encoders"),
            (Names{"B.safetensors", "_u.safetensors", "a-b.safetensors", "a.safetensors", "a/x.safetensors",
                   "b.safetensors", "shared.safetensors", "z.safetensors", "\xC3\xA9.safetensors"}));
}

TEST_F(FolderPaths, ClassifiersListOnlyFilesWithoutExtension) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/classifiers/model"));
  write_file(p("models/classifiers/model.pt"));
  write_file(p("models/classifiers/.hidden"));
  write_file(p("models/classifiers/sub.dir/plain"));
  write_file(p("models/classifiers/trailing."));
  EXPECT_EQ(fp.get_filename_list("classifiers"), (Names{".hidden", "model", "sub.dir/plain"}));
}

TEST_F(FolderPaths, DiffusersListsNothingByExtension) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/diffusers/sd15/model_index.json"));
  write_file(p("models/diffusers/sd15/unet/diffusion_pytorch_model.safetensors"));
  write_file(p("models/diffusers/folder"));
  EXPECT_EQ(fp.get_filename_list("diffusers"), Names{});
}

TEST_F(FolderPaths, CustomNodesListsEveryFile) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("custom_nodes/ext/__init__.py"));
  write_file(p("custom_nodes/README"));
  EXPECT_EQ(fp.get_filename_list("custom_nodes"), (Names{"README", "ext/__init__.py"}));
}

TEST_F(FolderPaths, ListingOfMissingDirectoriesIsEmpty) {
  comfy::FolderPaths fp(tmp.path());
  EXPECT_EQ(fp.get_filename_list("checkpoints"), Names{});
}

TEST_F(FolderPaths, ListingIsCachedWhileDirectoryMtimesAreUnchanged) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/vae/sub/a.pt"));
  const fs::path sub = p("models/vae/sub");
  age(sub);
  age(p("models/vae"));
  EXPECT_EQ(fp.get_filename_list("vae"), (Names{"sub/a.pt"}));
  const auto recorded = fs::last_write_time(sub);
  write_file(p("models/vae/sub/b.pt"));
  fs::last_write_time(sub, recorded);  // hide the change from the cache
  EXPECT_EQ(fp.get_filename_list("vae"), (Names{"sub/a.pt"}));
}

TEST_F(FolderPaths, ListingRefreshesWhenSubfolderChanges) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/loras/a/b/one.safetensors"));
  for (const char* d : {"models/loras", "models/loras/a", "models/loras/a/b"}) age(p(d));
  EXPECT_EQ(fp.get_filename_list("loras"), (Names{"a/b/one.safetensors"}));
  write_file(p("models/loras/a/b/two.safetensors"));
  EXPECT_EQ(fp.get_filename_list("loras"), (Names{"a/b/one.safetensors", "a/b/two.safetensors"}));
  age(p("models/loras/a/b"));
  fs::remove(p("models/loras/a/b/one.safetensors"));
  EXPECT_EQ(fp.get_filename_list("loras"), (Names{"a/b/two.safetensors"}));
}

TEST_F(FolderPaths, ListingRefreshesWhenSubfolderIsRemoved) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/loras/keep.pt"));
  write_file(p("models/loras/gone/x.pt"));
  EXPECT_EQ(fp.get_filename_list("loras"), (Names{"gone/x.pt", "keep.pt"}));
  const auto root_mtime = fs::last_write_time(p("models/loras"));
  fs::remove_all(p("models/loras/gone"));
  fs::last_write_time(p("models/loras"), root_mtime);  // only the vanished subfolder signals it
  EXPECT_EQ(fp.get_filename_list("loras"), (Names{"keep.pt"}));
}

TEST_F(FolderPaths, ListingRefreshesWhenConfiguredRootAppears) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/checkpoints/a.ckpt"));
  age(p("models/checkpoints"));
  fp.add_model_folder_path("checkpoints", p("later"));
  EXPECT_EQ(fp.get_filename_list("checkpoints"), (Names{"a.ckpt"}));
  write_file(p("later/b.ckpt"));
  EXPECT_EQ(fp.get_filename_list("checkpoints"), (Names{"a.ckpt", "b.ckpt"}));
}

TEST_F(FolderPaths, ListingRefreshesWhenSearchPathIsAdded) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/checkpoints/a.ckpt"));
  write_file(p("extra/b.ckpt"));
  age(p("models/checkpoints"));
  age(p("extra"));
  EXPECT_EQ(fp.get_filename_list("checkpoints"), (Names{"a.ckpt"}));
  fp.add_model_folder_path("checkpoints", p("extra"));
  EXPECT_EQ(fp.get_filename_list("checkpoints"), (Names{"a.ckpt", "b.ckpt"}));
}

TEST_F(FolderPaths, ListingIsThreadSafe) {
  comfy::FolderPaths fp(tmp.path());
  for (int i = 0; i < 20; ++i) write_file(p("models/loras/d" + std::to_string(i % 4) + "/f" + std::to_string(i) + ".pt"));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 50; ++k) {
        if (k % 10 == t % 10) age(p("models/loras/d" + std::to_string(t % 4)));  // force rescans
        if (fp.get_filename_list("loras").size() != 20u) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// 5.5 full paths

TEST_F(FolderPaths, GetFullPathFirstRegularFileWins) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  write_file(p("models/controlnet/cn.safetensors"));
  write_file(p("models/t2i_adapter/cn.safetensors"));
  write_file(p("models/t2i_adapter/only.safetensors"));
  fs::create_directories(p("models/controlnet/dir.safetensors"));
  write_file(p("models/t2i_adapter/dir.safetensors"));
  EXPECT_EQ(fp.get_full_path("controlnet", "cn.safetensors"), fs::path(m + "controlnet/cn.safetensors"));
  EXPECT_EQ(fp.get_full_path("controlnet", "only.safetensors"), fs::path(m + "t2i_adapter/only.safetensors"));
  EXPECT_EQ(fp.get_full_path("controlnet", "dir.safetensors"), fs::path(m + "t2i_adapter/dir.safetensors"));
  EXPECT_EQ(fp.get_full_path("controlnet", "missing.safetensors"), std::nullopt);
  // any extension resolves: get_full_path does not filter
  write_file(p("models/controlnet/notes.txt"));
  EXPECT_EQ(fp.get_full_path("controlnet", "notes.txt"), fs::path(m + "controlnet/notes.txt"));
}

TEST_F(FolderPaths, GetFullPathNormalisesNameRelativeToRoot) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  write_file(p("models/vae/x.pt"));
  write_file(p("models/vae/sub/y.pt"));
  write_file(p("models/secret.pt"));
  EXPECT_EQ(fp.get_full_path("vae", "../x.pt"), fs::path(m + "vae/x.pt"));
  EXPECT_EQ(fp.get_full_path("vae", "../../../x.pt"), fs::path(m + "vae/x.pt"));
  EXPECT_EQ(fp.get_full_path("vae", "/x.pt"), fs::path(m + "vae/x.pt"));
  EXPECT_EQ(fp.get_full_path("vae", "sub/../x.pt"), fs::path(m + "vae/x.pt"));
  EXPECT_EQ(fp.get_full_path("vae", "./sub//y.pt"), fs::path(m + "vae/sub/y.pt"));
  EXPECT_EQ(fp.get_full_path("vae", "../secret.pt"), std::nullopt);
  EXPECT_EQ(fp.get_full_path("vae", ""), std::nullopt);
  EXPECT_EQ(fp.get_full_path("vae", ".."), std::nullopt);
}

TEST_F(FolderPaths, GetFullPathSkipsBrokenSymlinks) {
  comfy::FolderPaths fp(tmp.path());
  const std::string m = base() + "/models/";
  fs::create_directories(p("models/text_encoders"));
  fs::create_symlink(p("nowhere.safetensors"), p("models/text_encoders/t5.safetensors"));
  write_file(p("models/clip/t5.safetensors"));
  write_file(p("real.safetensors"));
  fs::create_symlink(p("real.safetensors"), p("models/text_encoders/good.safetensors"));
  EXPECT_EQ(fp.get_full_path("text_encoders", "t5.safetensors"), fs::path(m + "clip/t5.safetensors"));
  EXPECT_EQ(fp.get_full_path("text_encoders", "good.safetensors"), fs::path(m + "text_encoders/good.safetensors"));
  fs::remove(p("models/clip/t5.safetensors"));
  EXPECT_EQ(fp.get_full_path("text_encoders", "t5.safetensors"), std::nullopt);
}

TEST_F(FolderPaths, GetFullPathOrRaiseMessage) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("models/loras/l.safetensors"));
  EXPECT_EQ(fp.get_full_path_or_raise("loras", "l.safetensors"), fs::path(base() + "/models/loras/l.safetensors"));
  try {
    fp.get_full_path_or_raise("clip", "missing.safetensors");
    FAIL() << "expected an exception";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "FileNotFoundError");
    EXPECT_STREQ(e.what(), "Model in folder 'clip' with filename 'missing.safetensors' not found.");
  }
  try {
    fp.get_full_path_or_raise("nope", "x");
    FAIL() << "expected an exception";
  } catch (const ComfyError& e) {
    EXPECT_EQ(e.type(), "FileNotFoundError");
    EXPECT_STREQ(e.what(), "Model in folder 'nope' with filename 'x' not found.");
  }
}

// ---------------------------------------------------------------------------------------------
// 5.6 annotated filenames

TEST_F(FolderPaths, SplitAnnotation) {
  using R = std::pair<std::string, std::optional<std::string>>;
  EXPECT_EQ(comfy::FolderPaths::split_annotation("ComfyUI_00001_.png [output]"), R("ComfyUI_00001_.png", "output"));
  EXPECT_EQ(comfy::FolderPaths::split_annotation("a.png [input]"), R("a.png", "input"));
  EXPECT_EQ(comfy::FolderPaths::split_annotation("sub/a.png [temp]"), R("sub/a.png", "temp"));
  EXPECT_EQ(comfy::FolderPaths::split_annotation("a.png"), R("a.png", std::nullopt));
  EXPECT_EQ(comfy::FolderPaths::split_annotation("a.png [user]"), R("a.png [user]", std::nullopt));
  EXPECT_EQ(comfy::FolderPaths::split_annotation("a.png [output] "), R("a.png [output] ", std::nullopt));
  // the character before the bracket is cut whatever it is, as ComfyUI does
  EXPECT_EQ(comfy::FolderPaths::split_annotation("a.png[output]"), R("a.pn", "output"));
}

TEST_F(FolderPaths, AnnotatedFilepathSelectsBaseDirectory) {
  comfy::FolderPaths fp(tmp.path());
  fp.set_output_directory(base() + "/out");
  EXPECT_EQ(fp.get_annotated_filepath("ComfyUI_00001_.png [output]"), fs::path(base() + "/out/ComfyUI_00001_.png"));
  EXPECT_EQ(fp.get_annotated_filepath("a.png [input]"), fs::path(base() + "/input/a.png"));
  EXPECT_EQ(fp.get_annotated_filepath("a.png [temp]"), fs::path(base() + "/temp/a.png"));
  EXPECT_EQ(fp.get_annotated_filepath("sub/a.png"), fs::path(base() + "/input/sub/a.png"));
  EXPECT_EQ(fp.get_annotated_filepath("a.png", fs::path("/some/dir")), fs::path("/some/dir/a.png"));
  EXPECT_EQ(fp.get_annotated_filepath("a.png [output]", fs::path("/some/dir")), fs::path(base() + "/out/a.png"));
}

TEST_F(FolderPaths, ExistsAnnotatedFilepath) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("output/o.png"));
  write_file(p("input/sub/i.png"));
  EXPECT_TRUE(fp.exists_annotated_filepath("o.png [output]"));
  EXPECT_FALSE(fp.exists_annotated_filepath("o.png"));
  EXPECT_TRUE(fp.exists_annotated_filepath("sub/i.png"));
  EXPECT_TRUE(fp.exists_annotated_filepath("sub/i.png [input]"));
  EXPECT_FALSE(fp.exists_annotated_filepath("sub/i.png [temp]"));
}

// ---------------------------------------------------------------------------------------------
// 5.7 input listing

TEST_F(FolderPaths, ListInputFilesIsTopLevelFilesSorted) {
  comfy::FolderPaths fp(tmp.path());
  write_file(p("input/b.png"));
  write_file(p("input/A.jpg"));
  write_file(p("input/a.latent"));
  write_file(p("input/sub/deep.png"));
  fs::create_directories(p("input/empty_dir"));
  fs::create_symlink(p("input/nowhere"), p("input/broken.png"));
  EXPECT_EQ(fp.list_input_files(), (Names{"A.jpg", "a.latent", "b.png"}));
  fp.set_input_directory(p("missing"));
  EXPECT_EQ(fp.list_input_files(), Names{});
}

// ---------------------------------------------------------------------------------------------
// 9.2 save paths

TEST_F(FolderPaths, SaveImagePathStartsAtOneAndCreatesFolder) {
  comfy::FolderPaths fp(tmp.path());
  const fs::path out = p("output");
  auto r = fp.get_save_image_path("ComfyUI", out);
  EXPECT_EQ(r.full_output_folder, fs::path(base() + "/output"));
  EXPECT_EQ(r.filename, "ComfyUI");
  EXPECT_EQ(r.counter, 1);
  EXPECT_EQ(r.subfolder, "");
  EXPECT_EQ(r.filename_prefix, "ComfyUI");
  EXPECT_TRUE(fs::is_directory(base() + "/output"));

  auto s = fp.get_save_image_path("a/b/pic", out);
  EXPECT_EQ(s.full_output_folder, fs::path(base() + "/output/a/b"));
  EXPECT_EQ(s.filename, "pic");
  EXPECT_EQ(s.subfolder, "a/b");
  EXPECT_EQ(s.counter, 1);
  EXPECT_TRUE(fs::is_directory(base() + "/output/a/b"));
}

TEST_F(FolderPaths, SaveImagePathCounterSkipsToNextFree) {
  comfy::FolderPaths fp(tmp.path());
  const fs::path out = p("output");
  write_file(p("output/ComfyUI_00003_.png"));
  write_file(p("output/ComfyUI_00007_.webp"));    // any extension counts
  write_file(p("output/ComfyUI_00005_.png"));
  write_file(p("output/ComfyUI_00099.png"));      // no "_" after the digits: int("00099.png") fails -> 0
  write_file(p("output/comfyui_00050_.png"));     // case-sensitive on POSIX
  write_file(p("output/ComfyUIx_00060_.png"));    // different prefix
  write_file(p("output/ComfyUI-00070_.png"));     // not followed by "_"
  write_file(p("output/sub/ComfyUI_00080_.png"));  // another folder
  write_file(p("output/Other_00090_.png"));
  auto r = fp.get_save_image_path("ComfyUI", out);
  EXPECT_EQ(r.counter, 8);
  // directories with a matching name count as well
  fs::create_directories(p("output/ComfyUI_00011_"));
  EXPECT_EQ(fp.get_save_image_path("ComfyUI", out).counter, 12);
  EXPECT_EQ(fp.get_save_image_path("sub/ComfyUI", out).counter, 81);
  EXPECT_EQ(fp.get_save_image_path("Other", out).counter, 91);
}

TEST_F(FolderPaths, SaveImagePathCounterIgnoresUnparsableDigits) {
  comfy::FolderPaths fp(tmp.path());
  const fs::path out = p("output");
  write_file(p("output/img_abc_.png"));
  write_file(p("output/img__.png"));
  EXPECT_EQ(fp.get_save_image_path("img", out).counter, 1);  // both parse as 0
  write_file(p("output/img_2_x.png"));
  write_file(p("output/img_ 4_.png"));  // int() accepts surrounding whitespace
  EXPECT_EQ(fp.get_save_image_path("img", out).counter, 5);
}

TEST_F(FolderPaths, SaveImagePathNormalisesPrefix) {
  comfy::FolderPaths fp(tmp.path());
  const fs::path out = p("output");
  auto r = fp.get_save_image_path("a/../b//./c/img", out);
  EXPECT_EQ(r.subfolder, "b/c");
  EXPECT_EQ(r.filename, "img");
  EXPECT_EQ(r.full_output_folder, fs::path(base() + "/output/b/c"));
  EXPECT_EQ(r.filename_prefix, "a/../b//./c/img");
}

TEST_F(FolderPaths, SaveImagePathSubstitutesSizeTokens) {
  comfy::FolderPaths fp(tmp.path());
  auto r = fp.get_save_image_path("img_%width%x%height%/%width%", p("output"), 512, 768);
  EXPECT_EQ(r.filename_prefix, "img_512x768/512");
  EXPECT_EQ(r.subfolder, "img_512x768");
  EXPECT_EQ(r.filename, "512");
  auto z = fp.get_save_image_path("%width%-%height%-%unknown%", p("output"));
  EXPECT_EQ(z.filename, "0-0-%unknown%");
}

TEST_F(FolderPaths, SaveImagePathSubstitutesDateTokensInLocalTime) {
  comfy::FolderPaths fp(tmp.path());
  auto before = std::time(nullptr);
  auto r = fp.get_save_image_path("%year%-%month%-%day%_%hour%.%minute%.%second%", p("output"));
  auto after = std::time(nullptr);
  std::regex shape(R"((\d{4})-(\d{2})-(\d{2})_(\d{2})\.(\d{2})\.(\d{2}))");
  std::smatch mm;
  ASSERT_TRUE(std::regex_match(r.filename, mm, shape)) << r.filename;
  auto fmt = [](std::time_t t) {
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d_%H.%M.%S", &tm);
    return std::string(buf);
  };
  EXPECT_TRUE(r.filename == fmt(before) || r.filename == fmt(after)) << r.filename;
}

TEST_F(FolderPaths, SaveImagePathRejectsPrefixOutsideOutputFolder) {
  comfy::FolderPaths fp(tmp.path());
  const fs::path out = p("output");
  for (const char* prefix : {"../evil", "a/../../evil", "/etc/evil", "../output2/x"}) {
    try {
      fp.get_save_image_path(prefix, out);
      ADD_FAILURE() << "no exception for " << prefix;
    } catch (const ComfyError& e) {
      EXPECT_EQ(e.type(), "Exception");
      EXPECT_EQ(std::string(e.what()).rfind("**** ERROR: Saving image outside the output folder is not allowed.", 0), 0u)
          << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(p("output2")));
  EXPECT_FALSE(fs::exists(p("evil")));
}

TEST_F(FolderPaths, SaveImagePathAllowsAbsolutePrefixInsideOutputFolder) {
  comfy::FolderPaths fp(tmp.path());
  const fs::path out = p("output");
  auto r = fp.get_save_image_path(base() + "/output/sub/x", out);
  EXPECT_EQ(r.full_output_folder, fs::path(base() + "/output/sub"));
  EXPECT_EQ(r.filename, "x");
  EXPECT_EQ(r.counter, 1);
}
