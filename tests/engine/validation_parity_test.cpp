// Replays every POST /prompt recorded from the real ComfyUI (tests/fixtures/validation) through
// our validation. Nodes are declared from the recorded /object_info, except the ones we build,
// which take their own declaration (and custom validator). Tracebacks and ids are ignored.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engine/harness.h"
#include "engine/object_info_defs.h"
#include "models/folder_paths.h"
#include "nodes/all.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

// Nodes whose validation needs their own validator: replaying them with a plain declaration
// would not be the real thing, so such cases wait until the node is ours.
const std::set<std::string> kCustomValidated = {"LoadImage", "LoadImageMask", "LoadImageOutput"};

void drop_tracebacks(json& j) {
  if (j.is_object()) {
    j.erase("traceback");
    for (auto& [k, v] : j.items()) drop_tracebacks(v);
  } else if (j.is_array()) {
    for (auto& v : j) drop_tracebacks(v);
  }
}

// Python's set order puts a node's errors and outputs in no fixed order: compare them sorted.
void sort_lists(json& body) {
  for (auto& [id, ne] : body["node_errors"].items()) {
    std::sort(ne["errors"].begin(), ne["errors"].end(), [](auto& a, auto& b) { return a.dump() < b.dump(); });
    std::sort(ne["dependent_outputs"].begin(), ne["dependent_outputs"].end());
  }
}

class ValidationParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ValidationParity, MatchesComfyUI) {
  json rec = load_json_file(GetParam());
  if (!rec.contains("request") || !rec["request"].is_object() || !rec["request"].contains("prompt") ||
      !rec["request"]["prompt"].is_object() || !rec.contains("response") || !rec["response"].is_object())
    GTEST_SKIP() << "not a validation case (transport-level: a server route test covers it)";

  Registry ours;
  register_all_nodes(ours);
  Registry r;
  add_recorded_nodes(r);
  json prompt = rec["request"]["prompt"];
  for (auto& [id, n] : prompt.items())
    if (n.is_object() && n.contains("class_type") && n["class_type"].is_string() &&
        kCustomValidated.count(n["class_type"].get<std::string>()) && !ours.find(n["class_type"].get<std::string>()))
      GTEST_SKIP() << n["class_type"].get<std::string>() << " is not built yet";

  // Loaders check their files (LoadImage: "Invalid image file: ..."); the oracle's input images
  // are kept in tests/fixtures/images/inputs.
  FolderPaths folders(std::filesystem::temp_directory_path());
  folders.set_input_directory(COMFY_TEST_DATA "/images/inputs");
  // The oracle's checkpoints folder held the two tiny checkpoints kept in tests/fixtures/models.
  folders.add_model_folder_path("checkpoints", COMFY_TEST_DATA "/models/checkpoints", true);
  Services s;
  s.folders = &folders;
  s.list_folder = [&](const std::string& name) { return folders.get_filename_list(name); };
  std::optional<std::vector<std::string>> targets;
  if (rec["request"].contains("partial_execution_targets"))
    targets = rec["request"]["partial_execution_targets"].get<std::vector<std::string>>();
  ValidationResult v = validate_prompt(r, s, prompt, targets);

  json expected = rec["response"];
  drop_tracebacks(expected);
  if (rec["status"] == 400) {
    ASSERT_FALSE(v.ok) << "ComfyUI refused this prompt: " << expected.dump();
    json body = v.error_body();
    drop_tracebacks(body);
    sort_lists(body);
    sort_lists(expected);
    EXPECT_EQ(nlohmann::json::parse(body.dump()), nlohmann::json::parse(expected.dump()));
  } else {
    ASSERT_TRUE(v.ok) << v.error_body().dump();
    json errors = json{{"node_errors", v.node_errors}}, theirs = json{{"node_errors", expected["node_errors"]}};
    drop_tracebacks(errors);
    sort_lists(errors);
    sort_lists(theirs);
    EXPECT_EQ(nlohmann::json::parse(errors.dump()), nlohmann::json::parse(theirs.dump()));
    if (rec.contains("history")) {
      // The prompt as stored in history shows the values as validation coerced them.
      EXPECT_EQ(nlohmann::json::parse(prompt.dump()), nlohmann::json::parse(rec["history"]["prompt"][2].dump()));
      std::vector<std::string> outs = rec["history"]["prompt"][4].get<std::vector<std::string>>();
      std::vector<std::string> got = v.outputs;
      std::sort(outs.begin(), outs.end());
      std::sort(got.begin(), got.end());
      EXPECT_EQ(got, outs);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Recorded, ValidationParity, ::testing::ValuesIn(recorded_validation_cases()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = fs::path(info.param).stem().string();
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace comfy::testing
