// What a node is: a declaration (inputs, outputs, flags) and the functions that run it. The
// declaration is the single source of `/object_info` and of validation, as ComfyUI's
// INPUT_TYPES/RETURN_TYPES are. Node families build these with the fluent setters below:
//
//   NodeDef KSampler() {
//     return NodeDef("KSampler").category("sampling")
//         .input("model", "MODEL", {{"tooltip", "..."}})
//         .output("LATENT").run(...);
//   }
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/json.h"
#include "graph/value.h"

namespace comfy {

struct Services;
class ExecutionContext;

// One call's inputs: each name maps to the list of values for that call. Outside INPUT_IS_LIST
// nodes every list holds exactly one value; an optional input that was not given is absent.
class NodeInputs {
 public:
  std::map<std::string, std::vector<Value>> values;

  bool has(const std::string& name) const;
  const Value& operator[](const std::string& name) const;  // first value; None if absent
  const std::vector<Value>& list(const std::string& name) const;
  int64_t get_int(const std::string& name) const { return (*this)[name].as_int(); }
  double get_float(const std::string& name) const { return (*this)[name].as_float(); }
  bool get_bool(const std::string& name) const { return (*this)[name].as_bool(); }
  const std::string& get_string(const std::string& name) const { return (*this)[name].as_string(); }
};

// What one call returns: a value per output slot (a ValueList for OUTPUT_IS_LIST slots), the UI
// dict (values are lists, concatenated across calls), or a subgraph to expand.
struct NodeOutput {
  std::vector<Value> result;
  json ui;  // null or an object of lists
  NodeOutput() = default;
  NodeOutput(std::vector<Value> r) : result(std::move(r)) {}
  NodeOutput(std::vector<Value> r, json u) : result(std::move(r)), ui(std::move(u)) {}
};

using NodeFunction = std::function<NodeOutput(ExecutionContext&, const NodeInputs&)>;
// Returns the names of lazy inputs the node still needs (ComfyUI's check_lazy_status).
using LazyCheck = std::function<std::vector<std::string>(ExecutionContext&, const NodeInputs&)>;
// A change fingerprint from constant inputs (IS_CHANGED); return json NaN to always re-run.
using ChangeFingerprint = std::function<json(const Services&, const NodeInputs&)>;
// VALIDATE_INPUTS: true, or an error text (an empty string counts as a failure without text).
using InputValidator = std::function<std::variant<bool, std::string>(
    const Services&, const NodeInputs&, const std::map<std::string, std::string>& input_types)>;
using ComboOptions = std::function<std::vector<std::string>(const Services&)>;

struct InputSpec {
  std::string name;
  std::string type;                // "INT", "MODEL", "COMBO" ... ("COMBO" for both combo styles)
  json options = json::object();   // printed verbatim in /object_info; min/max read from here
  ComboOptions combo;              // combos: the live option list
  bool v3_combo = false;           // printed as ["COMBO", {"options": [...]}] instead of [[...], {}]
  std::string folder;              // combos listing a model folder ("checkpoints") or "input"
  bool bare = false;               // declared without an options object: [TYPE] in /object_info
  bool lazy() const { return options.value("lazy", false); }
  bool raw_link() const { return options.value("rawLink", false); }
};

struct NodeDef {
  explicit NodeDef(std::string class_type) : name(std::move(class_type)) {}

  std::string name;
  std::optional<std::string> display_name_;
  std::string description_;
  std::string category_ = "sd";
  std::string python_module_ = "nodes";
  std::vector<InputSpec> required, optional;
  std::vector<std::pair<std::string, std::string>> hidden;  // name -> PROMPT/UNIQUE_ID/...
  std::vector<std::string> output_types, output_names;
  std::vector<std::optional<bool>> output_is_list;  // nullopt prints null (some V3 nodes do)
  std::vector<std::optional<std::string>> output_tooltips;  // may list more than the outputs
  json output_matchtypes_;                                   // V3 MatchType outputs, else null
  bool output_node_ = false, input_is_list_ = false, not_idempotent_ = false;
  bool deprecated_ = false, experimental_ = false;
  bool schema_v3_ = false;  // printed the way ComfyUI prints io.Schema nodes

  NodeFunction function;
  LazyCheck check_lazy_status;
  ChangeFingerprint is_changed;
  InputValidator validate_inputs;
  std::vector<std::string> validate_params;  // inputs the validator takes (skip min/max/list checks)
  bool validate_all_ = false;                // the validator takes **kwargs

  // Fluent declaration.
  NodeDef& display_name(std::string v) { display_name_ = std::move(v); return *this; }
  NodeDef& description(std::string v) { description_ = std::move(v); return *this; }
  NodeDef& category(std::string v) { category_ = std::move(v); return *this; }
  NodeDef& python_module(std::string v) { python_module_ = std::move(v); return *this; }
  NodeDef& output_node(bool v = true) { output_node_ = v; return *this; }
  NodeDef& input_is_list(bool v = true) { input_is_list_ = v; return *this; }
  NodeDef& not_idempotent(bool v = true) { not_idempotent_ = v; return *this; }
  NodeDef& deprecated(bool v = true) { deprecated_ = v; return *this; }
  NodeDef& experimental(bool v = true) { experimental_ = v; return *this; }
  NodeDef& schema_v3(bool v = true) { schema_v3_ = v; return *this; }

  NodeDef& input(std::string n, std::string type, json opts = nullptr);
  NodeDef& optional_input(std::string n, std::string type, json opts = nullptr);
  NodeDef& combo(std::string n, ComboOptions values, json opts = nullptr);
  NodeDef& combo(std::string n, std::vector<std::string> values, json opts = nullptr);
  NodeDef& optional_combo(std::string n, ComboOptions values, json opts = nullptr);
  NodeDef& v3_combo(std::string n, ComboOptions values, json opts = nullptr, bool optional = false);
  // Options default to null, which means "declared without options"; pass json::object() to
  // declare an explicitly empty one (a few ComfyUI nodes print ["*", {}]).
  // A combo of the files in a model folder (ckpt_name, lora_name, ...), listed live.
  NodeDef& model_combo(std::string n, std::string folder_name, json opts = nullptr);
  NodeDef& hidden_input(std::string n, std::string type);
  NodeDef& output(std::string type, std::optional<std::string> name = {},
                  std::optional<std::string> tooltip = {}, bool is_list = false);
  NodeDef& run(NodeFunction f) { function = std::move(f); return *this; }
  NodeDef& lazy_status(LazyCheck f) { check_lazy_status = std::move(f); return *this; }
  NodeDef& fingerprint(ChangeFingerprint f) { is_changed = std::move(f); return *this; }
  NodeDef& validator(InputValidator f, std::vector<std::string> params, bool all = false) {
    validate_inputs = std::move(f); validate_params = std::move(params); validate_all_ = all;
    return *this;
  }

  // Lookups used by validation and execution.
  const InputSpec* find_input(const std::string& n) const;
  bool is_required(const std::string& n) const;
  bool has_hidden(const std::string& type) const;
  bool validator_takes(const std::string& input) const;
};

}  // namespace comfy
