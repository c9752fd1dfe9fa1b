// Runs the image nodes (image.cpp, images.cpp) the way the executor does, with folders set up
// over tests/fixtures/images (inputs) and a fresh temporary output/temp folder, and reads the
// recorded ComfyUI outputs of tests/fixtures/images (see its README).
#pragma once
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "models/folder_paths.h"
#include "nodes/all.h"
#include "support/safetensors_read.h"

namespace comfy::testing {

inline const std::filesystem::path kImageFixtures = std::filesystem::path(COMFY_TEST_DATA) / "images";

inline const Registry& image_registry() {
  static const Registry r = [] {
    Registry reg;
    register_image(reg);
    register_images(reg);
    return reg;
  }();
  return r;
}

// A base directory of its own (input = the fixture inputs), removed afterwards.
struct ImageFolders {
  std::filesystem::path base;
  FolderPaths folders;
  Services services;
  ImageFolders() : base(make_base()), folders(base) {
    folders.set_input_directory(kImageFixtures / "inputs");
    services.folders = &folders;
  }
  ~ImageFolders() {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }
  static std::filesystem::path make_base() {
    static std::atomic<int> n{0};
    auto p = std::filesystem::temp_directory_path() /
             ("comfy-image-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(p);
    return p;
  }

  NodeOutput run(const std::string& class_type, const std::map<std::string, Value>& inputs,
                 const std::string& node_id = "1") const {
    const NodeDef* def = image_registry().find(class_type);
    if (!def) throw std::runtime_error("no node " + class_type);
    std::atomic<bool> interrupt{false};
    // Node state per (id, class), as the executor keeps it between prompts.
    ExecutionContext ctx(services, "prompt", node_id, &interrupt, [](double, double) {},
                         &states[{node_id, class_type}]);
    NodeInputs in;
    for (auto& [name, value] : inputs) in.values[name] = {value};
    return def->function(ctx, in);
  }
  mutable std::map<std::pair<std::string, std::string>, std::shared_ptr<void>> states;
  at::Tensor tensor(const std::string& class_type, const std::map<std::string, Value>& inputs, size_t slot = 0) const {
    return tensor_of(run(class_type, inputs).result.at(slot), "IMAGE");
  }
  at::Tensor load(const std::string& file) const { return tensor("LoadImage", {{"image", Value(json(file))}}); }
};

// A recorded IMAGE (OracleSaveImageTensor): tests/fixtures/images/<case>__<tag>.safetensors.
inline at::Tensor recorded(const std::string& case_tag) {
  return read_safetensors_f32((kImageFixtures / (case_tag + ".safetensors")).string()).at("image");
}
// A recorded MASK: it went through MaskToImage, which copies it into three channels.
inline at::Tensor recorded_mask(const std::string& case_tag) { return recorded(case_tag).select(3, 0); }

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0) return 0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

inline std::string gtest_name(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

inline json recorded_prompts() {
  std::ifstream f(kImageFixtures / "prompts.json");
  return json::parse(f);
}

}  // namespace comfy::testing
