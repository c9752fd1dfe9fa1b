// End-to-end parity with the real ComfyUI: every e2e case of tests/fixtures/reference/manifest.json
// runs its recorded workflow_api.json through our engine (validation, executor, every node) with
// the fixture models and inputs and a fresh output folder, then compares each saved .latent and
// .png with the recorded one under the manifest's tolerance, and each float IMAGE the oracle's
// OracleSaveImageTensor saved with the IMAGE that reaches the same node here (a test-only node of
// that name keeps it). A case that needs a node we do not have is skipped, naming the node.
// Run one case: --gtest_filter='*t2i_euler_normal*'.
#include <gtest/gtest.h>

#include <c10/core/InferenceMode.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "graph/executor.h"
#include "graph/registry.h"
#include "graph/services.h"
#include "graph/validation.h"
#include "io/image.h"
#include "models/folder_paths.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "nodes/all.h"
#include "support/model_engine.h"
#include "support/safetensors_read.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = COMFY_TEST_DATA;
const fs::path kRef = kFixtures / "reference";
// Not a ComfyUI node: the oracle's extension that saved an IMAGE as float32 (see the README).
const std::string kOracleNode = "OracleSaveImageTensor";

json load_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

const json& manifest() {
  static const json m = load_json(kRef / "manifest.json");
  return m;
}

std::vector<std::string> e2e_cases() {
  std::vector<std::string> ids;
  for (auto& c : manifest()["cases"])
    if (c["kind"] == "e2e") ids.push_back(c["id"].get<std::string>());
  return ids;
}

const json& find_case(const std::string& id) {
  for (auto& c : manifest()["cases"])
    if (c["id"] == id) return c;
  throw std::runtime_error("no case " + id);
}

std::string test_name(const std::string& id) {
  std::string s;
  for (char ch : id) s += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return s;
}

// The oracle's OracleSaveImageTensor, test-only: it keeps the IMAGE it receives, by node id, so
// the float tensor the oracle saved is compared with ours as it is, not through a PNG.
using CapturedImages = std::map<std::string, at::Tensor>;

NodeDef oracle_save_image_tensor(std::shared_ptr<CapturedImages> store) {
  return NodeDef(kOracleNode)
      .input("images", "IMAGE")
      .input("filename_prefix", "STRING", json::object())
      .output_node()
      .run([store](ExecutionContext& ctx, const NodeInputs& in) {
        (*store)[ctx.node_id()] = tensor_of(in["images"], "IMAGE").clone();
        return NodeOutput();
      });
}

// The fixture models and inputs, and the test-only OracleSaveImageTensor.
struct Engine : ModelEngine {
  std::shared_ptr<CapturedImages> images = std::make_shared<CapturedImages>();
  Engine() {
    folders.set_input_directory(kRef / "inputs");
    registry.add(oracle_save_image_tensor(images));
  }
};

// The decoded 8-bit RGB pixels of a PNG as an int tensor [H,W,3].
at::Tensor png_pixels(const fs::path& p) {
  io::DecodedImage d = io::read_image(p);
  const io::Frame& f = d.frames.at(0);
  at::Tensor t = at::tensor(std::vector<int64_t>(f.pixels.begin(), f.pixels.end()), at::kLong);
  return t.reshape({f.height, f.width, d.channels}).narrow(2, 0, 3);
}

// The manifest's entry (latents / images / tensors) for a compared file: node and batch item.
const json* file_entry(const json& c, const std::string& file) {
  for (const char* kind : {"latents", "images", "tensors"})
    if (c["files"].contains(kind))
      for (auto& e : c["files"][kind])
        if (e["file"] == file) return &e;
  return nullptr;
}

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, OutputsMatchComfyUI) {
  c10::InferenceMode guard;
  const json& c = find_case(GetParam());
  json prompt = load_json(kRef / c["files"]["workflow"].get<std::string>());

  Engine engine;
  std::set<std::string> missing;
  for (auto& [id, n] : prompt.items())
    if (!engine.registry.find(n["class_type"].get<std::string>())) missing.insert(n["class_type"].get<std::string>());
  if (!missing.empty()) {
    std::string names;
    for (auto& m : missing) names += (names.empty() ? "" : ", ") + m;
    GTEST_SKIP() << "needs nodes we do not have yet: " << names;
  }

  ExecutionResult r = engine.execute(prompt, json{{"client_id", "e2e"}});
  ASSERT_TRUE(r.success) << r.error.dump();

  for (auto& cmp : c["compare"]) {
    std::string file = cmp["file"].get<std::string>();
    const json* entry = file_entry(c, file);
    ASSERT_TRUE(entry) << file << " is not among the case's files";
    std::string node = (*entry)["node"].get<std::string>();
    std::string metric = cmp["metric"].get<std::string>();
    if (prompt.at(node)["class_type"] == kOracleNode) {
      // The oracle's float IMAGE, compared with the IMAGE our graph gave the same node.
      ASSERT_EQ(metric, "max_abs") << cmp.dump();
      auto it = engine.images->find(node);
      ASSERT_TRUE(it != engine.images->end()) << "node " << node << " received no IMAGE";
      at::Tensor ours = it->second.to(at::kFloat);
      at::Tensor ref = read_safetensors_f32((kRef / file).string()).at(cmp["tensor"].get<std::string>());
      ASSERT_EQ(ours.sizes(), ref.sizes()) << file;
      double diff = (ours - ref).abs().max().item<double>(), atol = cmp["atol"].get<double>();
      std::cout << "  " << file << ": max |diff| " << diff << " (atol " << atol << ")\n";
      EXPECT_LE(diff, atol) << file;
      continue;
    }
    ASSERT_TRUE(r.outputs.contains(node)) << "node " << node << " saved nothing";
    if (metric == "max_abs" && cmp["tensor"] == "latent_tensor") {
      fs::path ours = engine.saved(r.outputs[node]["latents"].at(0));
      at::Tensor a = read_safetensors_f32(ours.string()).at("latent_tensor");
      at::Tensor b = read_safetensors_f32((kRef / file).string()).at("latent_tensor");
      ASSERT_EQ(a.sizes(), b.sizes()) << file;
      double diff = (a - b).abs().max().item<double>(), atol = cmp["atol"].get<double>();
      std::cout << "  " << file << ": max |diff| " << diff << " (atol " << atol << ")\n";
      EXPECT_LE(diff, atol) << file;
    } else if (metric == "max_abs_u8") {
      size_t item = entry->value("batch_item", 0);
      fs::path ours = engine.saved(r.outputs[node]["images"].at(item));
      at::Tensor a = png_pixels(ours), b = png_pixels(kRef / file);
      ASSERT_EQ(a.sizes(), b.sizes()) << file;
      double diff = (a - b).abs().max().item<double>();
      std::cout << "  " << file << ": max |diff| " << diff << " u8 (max " << cmp["max"] << ")\n";
      EXPECT_LE(diff, cmp["max"].get<double>()) << file;
    } else {
      ADD_FAILURE() << "unknown compare " << cmp.dump();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(E2E, Reference, ::testing::ValuesIn(e2e_cases()),
                         [](const auto& info) { return test_name(info.param); });

}  // namespace
}  // namespace comfy::testing
