// ComfyUI's validate_prompt (spec 3.2-3.5): checks every output node and what it depends on,
// coerces widget values in place (INT/FLOAT/STRING/BOOLEAN, {"__value__": ...} unwrapped), and
// reports failures with ComfyUI's error objects so clients can show them unchanged.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "graph/registry.h"

namespace comfy {

struct ValidationResult {
  bool ok = false;
  json error;                         // the top-level error object when !ok
  std::vector<std::string> outputs;   // the good output node ids, in prompt order
  json node_errors = json::object();  // {id: {errors, dependent_outputs, class_type}}

  // The HTTP 400 body: {"error": ..., "node_errors": ...}.
  json error_body() const { return json{{"error", error}, {"node_errors", node_errors}}; }
};

ValidationResult validate_prompt(const Registry& registry, const Services& services, json& prompt,
                                 const std::optional<std::vector<std::string>>& partial_targets = {});

// Whether an output of type `received` may feed an input of type `expected` (validate_node_input).
bool types_compatible(const std::string& received, const std::string& expected);

// Is this input value a link ([node_id, index]) as execution sees it?
bool is_link(const json& value);

}  // namespace comfy
