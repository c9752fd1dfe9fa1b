#include "engine/object_info_defs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "nodes/all.h"

namespace comfy::testing {

json load_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

NodeDef node_def_from_object_info(const std::string& name, const json& info) {
  NodeDef def(name);
  bool v3 = info.contains("api_node");
  def.schema_v3(v3);
  if (!info["display_name"].is_null() && (v3 || info["display_name"] != name))
    def.display_name(info["display_name"].get<std::string>());
  def.description(info["description"].get<std::string>())
      .category(info["category"].get<std::string>())
      .python_module(info["python_module"].get<std::string>())
      .output_node(info["output_node"].get<bool>())
      .deprecated(info.value("deprecated", json(false)) == true)
      .experimental(info.value("experimental", json(false)) == true);
  for (const char* section : {"required", "optional"}) {
    if (!info["input"].contains(section)) continue;
    bool optional = std::string(section) == "optional";
    for (auto& [input, spec] : info["input"][section].items()) {
      json opts = spec.size() > 1 ? spec[1] : json(nullptr);
      if (spec[0].is_array()) {
        std::vector<std::string> values;
        for (auto& v : spec[0]) values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
        ComboOptions fn = [values](const Services&) { return values; };
        if (optional) def.optional_combo(input, fn, opts);
        else def.combo(input, fn, opts);
      } else if (spec[0] == "COMBO" && opts.is_object() && opts.contains("options")) {
        std::vector<std::string> values;
        for (auto& v : opts["options"]) values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
        opts.erase("options");
        def.v3_combo(input, [values](const Services&) { return values; }, opts, optional);
      } else if (optional) {
        def.optional_input(input, spec[0].get<std::string>(), opts);
      } else {
        def.input(input, spec[0].get<std::string>(), opts);
      }
    }
  }
  if (info["input"].contains("hidden"))
    for (auto& [input, type] : info["input"]["hidden"].items())
      def.hidden_input(input, type.is_array() ? type[0].get<std::string>() : type.get<std::string>());
  for (size_t i = 0; i < info["output"].size(); ++i) {
    std::optional<std::string> tooltip;
    if (info.contains("output_tooltips") && i < info["output_tooltips"].size() && info["output_tooltips"][i].is_string())
      tooltip = info["output_tooltips"][i].get<std::string>();
    const json& type = info["output"][i];
    def.output(type.is_string() ? type.get<std::string>() : "COMBO", info["output_name"][i].get<std::string>(), tooltip,
               info["output_is_list"][i].is_boolean() && info["output_is_list"][i].get<bool>());
    if (info["output_is_list"][i].is_null()) def.output_is_list.back() = std::nullopt;
  }
  if (info.contains("output_tooltips"))
    for (size_t i = info["output"].size(); i < info["output_tooltips"].size(); ++i)
      def.output_tooltips.push_back(info["output_tooltips"][i].is_string()
                                        ? std::optional<std::string>(info["output_tooltips"][i].get<std::string>())
                                        : std::nullopt);
  if (info.contains("output_matchtypes")) def.output_matchtypes_ = info["output_matchtypes"];
  def.run([name](ExecutionContext&, const NodeInputs&) -> NodeOutput {
    throw ComfyError("NotImplementedError", name + " is a declaration read from object_info");
  });
  return def;
}

void add_recorded_nodes(Registry& r) {
  Registry ours;
  register_all_nodes(ours);
  static const json recorded = load_json_file(COMFY_TEST_DATA "/comfyui/object_info.json");
  for (auto& [name, info] : recorded.items()) {
    if (const NodeDef* mine = ours.find(name)) r.add(*mine);
    else r.add(node_def_from_object_info(name, info));
  }
}

std::vector<std::string> recorded_validation_cases() {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::directory_iterator(COMFY_TEST_DATA "/validation"))
    if (e.path().extension() == ".json") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace comfy::testing
