// Calls one node the way the executor does (one value per input), for node tests; and the
// recorded cases of tests/fixtures/masks (see its README), replayed through our nodes.
#pragma once
#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "graph/registry.h"
#include "nodes/all.h"
#include "support/safetensors_read.h"

namespace comfy::testing {

inline const Registry& node_registry() {
  static const Registry r = [] {
    Registry reg;
    register_post_processing(reg);
    register_mask(reg);
    register_string(reg);
    register_logic(reg);
    return reg;
  }();
  return r;
}

inline NodeOutput run_node(const std::string& class_type, const std::map<std::string, Value>& inputs) {
  const NodeDef* def = node_registry().find(class_type);
  if (!def) throw std::runtime_error("no node " + class_type);
  Services services;
  std::atomic<bool> interrupt{false};
  ExecutionContext ctx(services, "prompt", "1", &interrupt, [](double, double) {});
  NodeInputs in;
  for (auto& [name, value] : inputs) in.values[name] = {value};
  return def->function(ctx, in);
}

// The first output of a node as a tensor.
inline at::Tensor run_tensor(const std::string& class_type, const std::map<std::string, Value>& inputs) {
  return tensor_of(run_node(class_type, inputs).result.at(0), "IMAGE");
}

// ---------------------------------------------------------------- recorded cases

inline const json& recorded_cases() {
  static const json j = [] {
    std::ifstream f(COMFY_TEST_DATA "/masks/cases.json");
    return json::parse(f);
  }();
  return j;
}

inline const std::map<std::string, at::Tensor>& recorded_inputs() {
  static const auto t = read_safetensors_f32(COMFY_TEST_DATA "/masks/inputs.safetensors");
  return t;
}

inline const std::map<std::string, at::Tensor>& recorded_outputs(const std::string& family) {
  static std::map<std::string, std::map<std::string, at::Tensor>> by_family;
  auto it = by_family.find(family);
  if (it == by_family.end())
    it = by_family.emplace(family, read_safetensors_f32(COMFY_TEST_DATA "/masks/" + family + ".safetensors")).first;
  return it->second;
}

// The names of a family's recorded cases, for INSTANTIATE_TEST_SUITE_P.
inline std::vector<std::string> recorded_case_names(const std::string& family) {
  std::vector<std::string> names;
  for (auto& [name, c] : recorded_cases().items())
    if (c["family"] == family) names.push_back(name);
  return names;
}

// A gtest-safe test name for a case ("grow_-2_square" -> "grow_m2_square").
inline std::string case_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string out;
  for (char c : info.param) out += std::isalnum(static_cast<unsigned char>(c)) ? std::string(1, c) : c == '-' ? "m" : "_";
  return out;
}

// Runs a recorded case through our node, then (for a MASK) through our MaskToImage as the
// recording did, and returns what was saved: a MASK back as [B,H,W], an IMAGE as it is.
inline at::Tensor replay_case(const std::string& name) {
  const json& c = recorded_cases()[name];
  std::map<std::string, Value> inputs;
  for (auto& [input, value] : c["widgets"].items()) inputs[input] = Value(value);
  for (auto& [input, source] : c["links"].items()) inputs[input] = tensor_value(recorded_inputs().at(source.get<std::string>()));
  at::Tensor out = run_tensor(c["class_type"].get<std::string>(), inputs);
  if (c["kind"] == "mask") out = run_tensor("MaskToImage", {{"mask", tensor_value(out)}}).select(3, 0);
  return out;
}

// Max |ours - theirs| over a case (shape must match).
inline double max_abs_diff(const at::Tensor& ours, const at::Tensor& theirs) {
  if (ours.numel() == 0) return 0;
  return (ours.to(at::kDouble) - theirs.to(at::kDouble)).abs().max().item<double>();
}

// Checks one recorded case: the same error type ComfyUI raised, or the same shape, or the same
// values within `tolerance` (0: bit-exact).
inline void check_recorded_case(const std::string& name, double tolerance) {
  const json& c = recorded_cases()[name];
  if (c.contains("error")) {
    std::string expected = c["error"]["exception_type"].get<std::string>();
    try {
      replay_case(name);
      ADD_FAILURE() << name << ": ComfyUI raised " << expected << " (" << c["error"]["exception_message"].get<std::string>()
                    << "), we did not";
    } catch (const ComfyError& e) {
      EXPECT_EQ(e.type(), expected) << name << ": " << e.what();
    }
    return;
  }
  at::Tensor ours = replay_case(name);
  if (c["kind"] == "shape") {
    EXPECT_EQ(ours.sizes().vec(), c["shape"].get<std::vector<int64_t>>()) << name;
    return;
  }
  const at::Tensor& theirs = recorded_outputs(c["family"].get<std::string>()).at(name);
  ASSERT_EQ(ours.sizes(), theirs.sizes()) << name;
  double diff = max_abs_diff(ours.contiguous(), theirs);
  if (tolerance == 0) EXPECT_EQ(diff, 0.0) << name << ": not bit-exact";
  else EXPECT_LE(diff, tolerance) << name;
}

}  // namespace comfy::testing
