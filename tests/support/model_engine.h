// An engine over a temporary base directory, as the server builds one: the fixture models
// (checkpoints, vae, loras, embeddings, upscale_models), empty text_encoders / diffusion_models /
// configs folders a test fills, a fresh output folder, every node registered. Either one node at
// a time (call) or a whole API prompt through validation and the executor (run / execute).
// Tests add folders (controlnet, input) and test-only nodes on the public members.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>

#include "core/error.h"
#include "graph/execution_context.h"
#include "graph/executor.h"
#include "graph/registry.h"
#include "graph/validation.h"
#include "models/folder_paths.h"
#include "nodes/all.h"

namespace comfy::testing {

namespace fs = std::filesystem;

inline const fs::path kFixtureModels = fs::path(COMFY_TEST_DATA) / "models";

class SilentSink : public EventSink {
 public:
  void send(const std::string&, const json&, const std::string&) override {}
};

struct ModelEngine {
  fs::path base;
  FolderPaths folders;
  Services services;
  Registry registry;
  SilentSink sink;
  Executor executor;

  ModelEngine() : base(make_base()), folders(base), executor(registry, services, &sink) {
    for (const char* f : {"checkpoints", "vae", "loras", "embeddings", "upscale_models"})
      folders.add_model_folder_path(f, kFixtureModels / f, true);
    for (const char* f : {"text_encoders", "diffusion_models", "configs"}) {
      fs::create_directories(base / "models" / f);
      folders.add_model_folder_path(f, base / "models" / f, true);
    }
    fs::create_directories(folders.output_directory());
    services.folders = &folders;
    services.list_folder = [this](const std::string& name) { return folders.get_filename_list(name); };
    services.model_fingerprint = [this](const std::string& folder, const std::string& name) {
      return folders.file_fingerprint(folder, name);
    };
    register_all_nodes(registry);
  }
  ~ModelEngine() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  static fs::path make_base() {
    static std::atomic<int> n{0};
    fs::path p = fs::temp_directory_path() / ("comfy-models-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::create_directories(p);
    return p;
  }
  fs::path models(const std::string& folder) const { return base / "models" / folder; }
  fs::path output() const { return folders.output_directory(); }

  // One node, called as the executor calls it (hidden inputs given explicitly).
  NodeOutput call(const std::string& class_type, const std::map<std::string, Value>& inputs) const {
    const NodeDef* def = registry.find(class_type);
    if (!def) throw std::runtime_error("no node " + class_type);
    std::atomic<bool> interrupt{false};
    ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {});
    NodeInputs in;
    for (auto& [name, value] : inputs) in.values[name] = {value};
    return def->function(ctx, in);
  }
  Value one(const std::string& class_type, const std::map<std::string, Value>& inputs, size_t slot = 0) const {
    return call(class_type, inputs).result.at(slot);
  }

  // A whole prompt; fails the test on a validation or execution error.
  ExecutionResult run(json prompt, const json& extra_data = json::object()) {
    ExecutionResult r = execute(std::move(prompt), extra_data);
    EXPECT_TRUE(r.success) << r.error.dump();
    return r;
  }
  // The same, leaving the execution's outcome to the test.
  ExecutionResult execute(json prompt, const json& extra_data = json::object()) {
    ValidationResult v = validate_prompt(registry, services, prompt);
    EXPECT_TRUE(v.ok) << v.error_body().dump();
    return executor.execute(prompt, "prompt", extra_data, v.outputs);
  }
  // The file a SaveImage / SaveLatent ui entry names.
  fs::path saved(const json& ui_entry) const {
    return output() / ui_entry.value("subfolder", "") / ui_entry["filename"].get<std::string>();
  }
};

inline Value strv(const std::string& s) { return Value(json(s)); }
inline Value numv(double v) { return Value(json(v)); }

}  // namespace comfy::testing
