// Runs the LATENT and VAE nodes (latent.cpp, latent_extras.cpp, vae.cpp) and LoadImage the way
// the executor does, over a temporary base directory whose input folder is the reference
// inputs and whose vae folder is the fixture models' (tests/fixtures/reference, models).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "io/safetensors.h"
#include "models/folder_paths.h"
#include "models/latent.h"
#include "models/vae_model.h"
#include "models/weights.h"
#include "nodes/all.h"
#include "support/safetensors_read.h"

namespace comfy::testing {

inline const std::filesystem::path kReference = std::filesystem::path(COMFY_TEST_DATA) / "reference";
inline const std::filesystem::path kModels = std::filesystem::path(COMFY_TEST_DATA) / "models";

inline const Registry& latent_registry() {
  static const Registry r = [] {
    Registry reg;
    register_image(reg);
    register_vae(reg);
    register_latent(reg);
    return reg;
  }();
  return r;
}

struct LatentFolders {
  std::filesystem::path base;
  FolderPaths folders;
  Services services;
  LatentFolders() : base(make_base()), folders(base) {
    folders.set_input_directory(kReference / "inputs");
    folders.add_model_folder_path("vae", kModels / "vae", true);
    services.folders = &folders;
    services.list_folder = [this](const std::string& f) { return folders.get_filename_list(f); };
  }
  ~LatentFolders() {
    std::error_code ec;
    std::filesystem::remove_all(base, ec);
  }
  static std::filesystem::path make_base() {
    static std::atomic<int> n{0};
    auto p = std::filesystem::temp_directory_path() /
             ("comfy-latent-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(p);
    return p;
  }

  NodeOutput run(const std::string& class_type, const std::map<std::string, Value>& inputs) const {
    const NodeDef* def = latent_registry().find(class_type);
    if (!def) throw std::runtime_error("no node " + class_type);
    std::atomic<bool> interrupt{false};
    ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {});
    NodeInputs in;
    for (auto& [name, value] : inputs) in.values[name] = {value};
    return def->function(ctx, in);
  }
  Latent latent(const std::string& class_type, const std::map<std::string, Value>& inputs, size_t slot = 0) const {
    return latent_of(run(class_type, inputs).result.at(slot));
  }
  at::Tensor image(const std::string& class_type, const std::map<std::string, Value>& inputs, size_t slot = 0) const {
    return tensor_of(run(class_type, inputs).result.at(slot), "IMAGE");
  }
  // LoadImage's IMAGE of a reference input.
  at::Tensor load_image(const std::string& file) const { return image("LoadImage", {{"image", Value(json(file))}}); }
};

inline Value lat(at::Tensor samples) {
  Latent l;
  l.samples = std::move(samples);
  return latent_value(std::move(l));
}
inline Value lat(Latent l) { return latent_value(std::move(l)); }
inline Value num(double v) { return Value(json(v)); }
inline Value integer(int64_t v) { return Value(json(v)); }
inline Value str(const std::string& s) { return Value(json(s)); }

// The VAE of tiny_sd15 (its first_stage_model) and the standalone tiny_vae.
inline std::shared_ptr<const Vae> checkpoint_vae() {
  static auto v = make_vae(Weights(WeightSet::from_file(SafetensorsFile::open(kModels / "checkpoints/tiny_sd15.safetensors")),
                                   "first_stage_model."));
  return v;
}
inline std::shared_ptr<const Vae> standalone_vae() {
  static auto v = make_vae(Weights(WeightSet::from_file(SafetensorsFile::open(kModels / "vae/tiny_vae.safetensors"))));
  return v;
}
inline Value vae_value(std::shared_ptr<const Vae> v) { return Value(std::static_pointer_cast<const Object>(v)); }

inline double max_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0) return 0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// A tensor of a SaveLatent file (e2e/<case>/<tag>.latent).
inline at::Tensor recorded_latent(const std::string& case_id, const std::string& tag) {
  return read_safetensors_f32((kReference / "e2e" / case_id / (tag + ".latent")).string()).at("latent_tensor");
}

}  // namespace comfy::testing
