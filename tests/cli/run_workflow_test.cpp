// `comfycpp run` on a UI workflow and on images that carry one reproduces the run of the API
// prompt; `comfycpp convert` prints the prompt. Runs the real binary in temporary base folders.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "io/image.h"
#include "io/png.h"
#include "io/webp.h"

#include "support/shell.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fixture(const std::string& name) { return std::string(COMFY_TEST_DATA) + "/workflows/ui/" + name; }

using comfy::testing::CliResult;
using comfy::testing::q;

// Runs the binary with `args` (already shell-quoted where needed); stderr is discarded.
CliResult cli(const std::string& args) {
  return comfy::testing::run_shell(std::string("'") + COMFY_BINARY + "' " + args + " 2>/dev/null");
}

class RunWorkflow : public ::testing::Test {
 protected:
  fs::path root;
  void SetUp() override {
    root = fs::temp_directory_path() /
           ("comfy_cli_workflow_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }

  // Runs `workflow` with its own base directory `name`; returns that base directory.
  fs::path run(const std::string& workflow, const std::string& name) {
    fs::path base = root / name;
    CliResult r = cli("run " + q(workflow) + " --base-directory " + q(base));
    EXPECT_EQ(r.rc, 0) << "comfycpp run " << workflow << " failed: " << r.out;
    return base;
  }
  static io::DecodedImage image(const fs::path& file) {
    EXPECT_TRUE(fs::exists(file)) << file;
    return io::decode_png(io::read_file(file), file.string());
  }
};

void expect_same_pixels(const io::DecodedImage& a, const io::DecodedImage& b) {
  ASSERT_EQ(a.frames.size(), b.frames.size());
  ASSERT_FALSE(a.frames.empty());
  EXPECT_EQ(a.frames[0].width, b.frames[0].width);
  EXPECT_EQ(a.frames[0].height, b.frames[0].height);
  EXPECT_EQ(a.frames[0].pixels, b.frames[0].pixels);
}

// --verbose [LEVEL] as ComfyUI's: the flag alone logs debug lines, a level sets the threshold.
TEST_F(RunWorkflow, VerboseTakesComfyUIsLevels) {
  fs::path wf = root / "w.json";
  std::ofstream(wf) << R"({"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                           "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "v"}}})";
  auto run_with = [&](const std::string& flags) {
    return comfy::testing::run_shell(std::string("'") + COMFY_BINARY + "' run " + q(wf) + " --base-directory " +
                                     q(root / "base") + " " + flags + " 2>&1");
  };
  CliResult debug = run_with("--verbose");
  EXPECT_EQ(debug.rc, 0) << debug.out;
  EXPECT_NE(debug.out.find("workflow read as api"), std::string::npos) << debug.out;  // a debug line
  CliResult quiet = run_with("--verbose ERROR");
  EXPECT_EQ(quiet.rc, 0) << quiet.out;
  EXPECT_EQ(quiet.out.find("workflow read as api"), std::string::npos) << quiet.out;
  EXPECT_NE(run_with("--verbose LOUD").rc, 0);
}

TEST_F(RunWorkflow, UiWorkflowReproducesTheApiPromptRun) {
  fs::path api = run(fixture("basic_v04.api.json"), "api");
  fs::path ui = run(fixture("basic_v04.json"), "ui");
  io::DecodedImage a = image(api / "output" / "basic_00001_.png"), b = image(ui / "output" / "basic_00001_.png");
  expect_same_pixels(a, b);
  EXPECT_EQ(a.frames[0].width, 64);
  // The UI run embeds the workflow, as the frontend's extra_pnginfo does.
  ASSERT_TRUE(b.text.count("workflow"));
  EXPECT_EQ(nlohmann::json::parse(b.text["workflow"]), nlohmann::json::parse(read_text(fixture("basic_v04.json"))));
  EXPECT_EQ(nlohmann::json::parse(b.text["prompt"]), nlohmann::json::parse(read_text(fixture("basic_v04.api.json"))));
}

TEST_F(RunWorkflow, EveryRunnableFixtureRunsLikeItsExpectedPrompt) {
  for (std::string name : {"schema_v1", "reroute_chain", "bypass", "primitive", "subgraph"}) {
    SCOPED_TRACE(name);
    fs::path api = run(fixture(name + ".api.json"), name + "_api");
    fs::path ui = run(fixture(name + ".json"), name + "_ui");
    size_t files = 0;
    for (auto& e : fs::directory_iterator(api / "output")) {
      expect_same_pixels(image(e.path()), image(ui / "output" / e.path().filename()));
      ++files;
    }
    EXPECT_GE(files, 1u);
  }
}

TEST_F(RunWorkflow, PngFromSaveImageReproducesTheRun) {
  fs::path first = run(fixture("subgraph.json"), "first");
  fs::path png = first / "output" / "subgraph_00001_.png";
  fs::path again = run(png.string(), "again");
  io::DecodedImage a = image(png), b = image(again / "output" / "subgraph_00001_.png");
  expect_same_pixels(a, b);
  // The metadata travels on: the new file carries the same prompt and workflow.
  EXPECT_EQ(nlohmann::json::parse(a.text["prompt"]), nlohmann::json::parse(b.text["prompt"]));
  EXPECT_EQ(nlohmann::json::parse(a.text["workflow"]), nlohmann::json::parse(b.text["workflow"]));
}

TEST_F(RunWorkflow, PngWithOnlyAWorkflowIsConverted) {
  fs::path api = run(fixture("reroute_chain.api.json"), "api");
  std::string workflow = json::parse(read_text(fixture("reroute_chain.json"))).dump();
  uint8_t px[3] = {0, 0, 0};
  fs::path png = root / "workflow_only.png";
  io::write_file_atomic(png, io::encode_png(px, 1, 1, 3, 1, {{"workflow", workflow}}));
  fs::path ui = run(png.string(), "ui");
  expect_same_pixels(image(api / "output" / "rerouted_00001_.png"), image(ui / "output" / "rerouted_00001_.png"));
}

TEST_F(RunWorkflow, WebpWithPromptAndWorkflowExifRuns) {
  fs::path api = run(fixture("bypass.api.json"), "api");
  std::string prompt = json::parse(read_text(fixture("bypass.api.json"))).dump();
  std::string workflow = json::parse(read_text(fixture("bypass.json"))).dump();
  std::vector<uint8_t> frame(4 * 4 * 3, 128);
  io::WebpAnimOptions options;
  options.exif = io::exif_ascii_block({{0x0110, "prompt:" + prompt}, {0x010F, "workflow:" + workflow}});
  fs::path webp = root / "carrier.webp";
  io::write_file_atomic(webp, io::encode_animated_webp({frame.data()}, 4, 4, 3, options));
  fs::path from_webp = run(webp.string(), "webp");
  expect_same_pixels(image(api / "output" / "bypassed_00001_.png"), image(from_webp / "output" / "bypassed_00001_.png"));
  // And a WebP that only carries the workflow is converted.
  options.exif = io::exif_ascii_block({{0x010F, "workflow:" + workflow}});
  io::write_file_atomic(webp, io::encode_animated_webp({frame.data()}, 4, 4, 3, options));
  fs::path converted = run(webp.string(), "webp_workflow");
  expect_same_pixels(image(api / "output" / "bypassed_00001_.png"), image(converted / "output" / "bypassed_00001_.png"));
}

TEST_F(RunWorkflow, ConvertPrintsTheApiPrompt) {
  CliResult r = cli("convert " + q(fixture("subgraph.json")) + " --to api --base-directory " + q(root));
  ASSERT_EQ(r.rc, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::parse(read_text(fixture("subgraph.api.json"))));
  EXPECT_NE(cli("convert " + q(fixture("subgraph.json")) + " --to xml").rc, 0);
}

TEST_F(RunWorkflow, DanglingLinkGivesComfyErrorJson) {
  json w = json::parse(read_text(fixture("basic_v04.json")));
  for (auto& n : w["nodes"])
    if (n["id"] == 2) n["inputs"][0]["link"] = 77;
  fs::path bad = root / "bad.json";
  std::ofstream(bad) << w.dump();
  CliResult r = cli("run " + q(bad) + " --json --base-directory " + q(root / "base"));
  EXPECT_EQ(r.rc, 1);
  json body = json::parse(r.out);
  EXPECT_EQ(body["error"]["type"], "invalid_prompt");
  EXPECT_EQ(body["error"]["extra_info"]["node_id"], "2");
  EXPECT_EQ(body["error"]["extra_info"]["input_name"], "image");
  EXPECT_NE(body["error"]["details"].get<std::string>().find("link 77"), std::string::npos);
}

TEST_F(RunWorkflow, ImageWithoutMetadataIsAnError) {
  uint8_t px[3] = {1, 2, 3};
  fs::path png = root / "plain.png";
  io::write_file_atomic(png, io::encode_png(px, 1, 1, 3, 1));
  CliResult r = cli("run " + q(png) + " --json --base-directory " + q(root / "base"));
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(json::parse(r.out)["error"]["message"].get<std::string>().find("no ComfyUI prompt"), std::string::npos);
}

TEST_F(RunWorkflow, LoadImageOfAnAnimatedPngGivesOneImagePerFrame) {
  fs::path base = root / "anim";
  fs::create_directories(base / "input");
  // 0 and 255 survive LoadImage's /255 and SaveImage's *255 exactly.
  std::vector<uint8_t> a(3 * 2 * 3, 0), b(3 * 2 * 3, 255);
  a[4] = 255;
  b[0] = 0;
  io::write_file_atomic(base / "input" / "anim.png", io::encode_apng({a.data(), b.data(), a.data()}, 3, 2, 3, 100, 4));
  json prompt = {{"1", {{"class_type", "LoadImage"}, {"inputs", {{"image", "anim.png"}}}}},
                 {"2", {{"class_type", "SaveImage"}, {"inputs", {{"images", json::array({"1", 0})}, {"filename_prefix", "frame"}}}}}};
  fs::path file = root / "anim.json";
  std::ofstream(file) << prompt.dump();
  CliResult r = cli("run " + q(file) + " --base-directory " + q(base));
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(image(base / "output" / "frame_00001_.png").frames[0].pixels, a);
  EXPECT_EQ(image(base / "output" / "frame_00002_.png").frames[0].pixels, b);
  EXPECT_EQ(image(base / "output" / "frame_00003_.png").frames[0].pixels, a);
  EXPECT_FALSE(fs::exists(base / "output" / "frame_00004_.png"));
}

}  // namespace
}  // namespace comfy
