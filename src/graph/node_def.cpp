#include "graph/node_def.h"

#include <algorithm>

#include "graph/services.h"

namespace comfy {

bool NodeInputs::has(const std::string& name) const { return values.count(name) > 0; }

const Value& NodeInputs::operator[](const std::string& name) const {
  static const Value none;
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return none;
  return it->second.front();
}

const std::vector<Value>& NodeInputs::list(const std::string& name) const {
  static const std::vector<Value> empty;
  auto it = values.find(name);
  return it == values.end() ? empty : it->second;
}

namespace {
InputSpec make_spec(std::string name, std::string type, json opts) {
  InputSpec spec;
  spec.name = std::move(name);
  spec.type = std::move(type);
  spec.bare = opts.is_null();
  spec.options = opts.is_null() ? json::object() : std::move(opts);
  return spec;
}
}  // namespace

NodeDef& NodeDef::input(std::string n, std::string type, json opts) {
  required.push_back(make_spec(std::move(n), std::move(type), std::move(opts)));
  return *this;
}

NodeDef& NodeDef::optional_input(std::string n, std::string type, json opts) {
  optional.push_back(make_spec(std::move(n), std::move(type), std::move(opts)));
  return *this;
}

NodeDef& NodeDef::combo(std::string n, ComboOptions values, json opts) {
  InputSpec spec = make_spec(std::move(n), "COMBO", std::move(opts));
  spec.combo = std::move(values);
  required.push_back(std::move(spec));
  return *this;
}

NodeDef& NodeDef::combo(std::string n, std::vector<std::string> values, json opts) {
  return combo(std::move(n), [v = std::move(values)](const Services&) { return v; }, std::move(opts));
}

NodeDef& NodeDef::optional_combo(std::string n, ComboOptions values, json opts) {
  InputSpec spec = make_spec(std::move(n), "COMBO", std::move(opts));
  spec.combo = std::move(values);
  optional.push_back(std::move(spec));
  return *this;
}

NodeDef& NodeDef::v3_combo(std::string n, ComboOptions values, json opts, bool is_optional) {
  InputSpec spec = make_spec(std::move(n), "COMBO", std::move(opts));
  spec.combo = std::move(values);
  spec.v3_combo = true;
  (is_optional ? optional : required).push_back(std::move(spec));
  return *this;
}

NodeDef& NodeDef::model_combo(std::string n, std::string folder_name, json opts) {
  InputSpec spec = make_spec(std::move(n), "COMBO", std::move(opts));
  spec.folder = folder_name;
  spec.combo = [folder_name](const Services& services) {
    return services.list_folder ? services.list_folder(folder_name) : std::vector<std::string>{};
  };
  required.push_back(std::move(spec));
  return *this;
}

NodeDef& NodeDef::hidden_input(std::string n, std::string type) {
  hidden.emplace_back(std::move(n), std::move(type));
  return *this;
}

NodeDef& NodeDef::output(std::string type, std::optional<std::string> name,
                         std::optional<std::string> tooltip, bool is_list) {
  output_names.push_back(name ? *name : type);
  output_types.push_back(std::move(type));
  output_is_list.push_back(is_list);
  output_tooltips.push_back(std::move(tooltip));
  return *this;
}

const InputSpec* NodeDef::find_input(const std::string& n) const {
  for (auto* list : {&required, &optional})
    for (auto& spec : *list)
      if (spec.name == n) return &spec;
  return nullptr;
}

bool NodeDef::is_required(const std::string& n) const {
  return std::any_of(required.begin(), required.end(), [&](auto& s) { return s.name == n; });
}

bool NodeDef::has_hidden(const std::string& type) const {
  return std::any_of(hidden.begin(), hidden.end(), [&](auto& h) { return h.second == type; });
}

bool NodeDef::validator_takes(const std::string& input) const {
  if (!validate_inputs) return false;
  if (validate_all_) return true;
  return std::find(validate_params.begin(), validate_params.end(), input) != validate_params.end();
}

}  // namespace comfy
