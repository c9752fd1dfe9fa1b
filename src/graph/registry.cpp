#include "graph/registry.h"

#include <stdexcept>

namespace comfy {

void Registry::add(NodeDef def) {
  if (index_.count(def.name)) throw std::logic_error("node registered twice: " + def.name);
  if (!def.function) throw std::logic_error("node without a function: " + def.name);
  index_[def.name] = defs_.size();
  defs_.push_back(std::move(def));
}

const NodeDef* Registry::find(const std::string& class_type) const {
  auto it = index_.find(class_type);
  return it == index_.end() ? nullptr : &defs_[it->second];
}

std::vector<std::string> combo_options(const InputSpec& spec, const Services& services) {
  if (spec.combo) return spec.combo(services);
  // A plain "COMBO" type takes its options from the options object (ComfyUI: extra_info["options"]).
  std::vector<std::string> out;
  if (spec.options.contains("options"))
    for (auto& v : spec.options["options"]) out.push_back(v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

json input_config(const NodeDef& def, const InputSpec& spec, const Services& services) {
  if (spec.type == "COMBO" && spec.v3_combo) {
    json opts = spec.options;
    if (!opts.contains("multiselect")) opts["multiselect"] = false;
    opts["options"] = combo_options(spec, services);
    return json::array({"COMBO", opts});
  }
  json type = spec.type == "COMBO" && spec.combo ? json(combo_options(spec, services)) : json(spec.type);
  // Classic nodes that declare no options print a one-element array; schema nodes always print {}.
  if (spec.bare && !def.schema_v3_) return json::array({type});
  return json::array({type, spec.options});
}

json Registry::object_info(const NodeDef& def, const Services& services) const {
  json info;
  json input = json::object(), order = json::object();
  auto section = [&](const char* key, const std::vector<InputSpec>& specs) {
    // Every node ComfyUI prints has a required section, empty or not.
    if (specs.empty() && std::string(key) != "required") return;
    json s = json::object(), names = json::array();
    for (auto& spec : specs) {
      s[spec.name] = input_config(def, spec, services);
      names.push_back(spec.name);
    }
    input[key] = s;
    order[key] = names;
  };
  section("required", def.required);
  section("optional", def.optional);
  if (!def.hidden.empty()) {
    json s = json::object(), names = json::array();
    for (auto& [name, type] : def.hidden) {
      s[name] = def.schema_v3_ ? json::array({type}) : json(type);
      names.push_back(name);
    }
    input["hidden"] = s;
    order["hidden"] = names;
  }
  info["input"] = input;
  info["input_order"] = order;
  info["output"] = def.output_types;
  json is_list = json::array();
  for (auto& l : def.output_is_list) is_list.push_back(l ? json(*l) : json(nullptr));
  info["output_is_list"] = is_list;
  info["output_name"] = def.output_names;
  json tooltips = json::array();
  bool any_tooltip = false;
  for (auto& t : def.output_tooltips) {
    tooltips.push_back(t ? json(*t) : json(nullptr));
    any_tooltip = any_tooltip || t.has_value();
  }
  if (def.schema_v3_) {
    info["output_tooltips"] = tooltips;
    info["output_matchtypes"] = def.output_matchtypes_;
  }
  info["name"] = def.name;
  if (def.schema_v3_)
    info["display_name"] = def.display_name_ ? json(*def.display_name_) : json(nullptr);
  else
    info["display_name"] = def.display_name_.value_or(def.name);
  info["description"] = def.description_;
  info["python_module"] = def.python_module_;
  info["category"] = def.category_;
  info["output_node"] = def.output_node_;
  if (def.schema_v3_) {
    info["deprecated"] = def.deprecated_;
    info["experimental"] = def.experimental_;
    info["api_node"] = false;
  } else {
    if (any_tooltip) info["output_tooltips"] = tooltips;
    if (def.deprecated_) info["deprecated"] = true;
    if (def.experimental_) info["experimental"] = true;
  }
  return info;
}

json Registry::object_info(const Services& services) const {
  json all = json::object();
  for (auto& def : defs_) all[def.name] = object_info(def, services);
  return all;
}

}  // namespace comfy
