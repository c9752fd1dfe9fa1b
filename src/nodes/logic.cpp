// ComfyUI's comfy_extras/nodes_logic.py, as far as 0.8.0 registers it: the lazy Switch and the
// frontend-defined Custom Combo. (Its other classes are commented out of the extension's list, so
// they are not in /object_info.)
#include "nodes/all.h"

namespace comfy {
namespace {

// A V3 MatchType input or output bound to the template "switch", which accepts any type.
json match_type_switch(bool lazy) {
  json opts = {{"template", {{"template_id", "switch"}, {"allowed_types", "*"}}}};
  if (lazy) opts["lazy"] = true;
  return opts;
}

NodeDef ComfySwitchNode() {
  NodeDef def = NodeDef("ComfySwitchNode")
                    .schema_v3()
                    .display_name("Switch")
                    .category("logic")
                    .python_module("comfy_extras.nodes_logic")
                    .experimental()
                    .input("switch", "BOOLEAN", json::object())
                    .input("on_false", "COMFY_MATCHTYPE_V3", match_type_switch(true))
                    .input("on_true", "COMFY_MATCHTYPE_V3", match_type_switch(true))
                    .output("COMFY_MATCHTYPE_V3", "output")
                    // Only the branch the switch selects is evaluated.
                    .lazy_status([](ExecutionContext&, const NodeInputs& in) -> std::vector<std::string> {
                      bool on = in.get_bool("switch");
                      if (on && in["on_true"].is_none()) return {"on_true"};
                      if (!on && in["on_false"].is_none()) return {"on_false"};
                      return {};
                    })
                    .run([](ExecutionContext&, const NodeInputs& in) {
                      return NodeOutput({in.get_bool("switch") ? in["on_true"] : in["on_false"]});
                    });
  def.output_matchtypes_ = json::array({"switch"});
  return def;
}

NodeDef CustomCombo() {
  return NodeDef("CustomCombo")
      .schema_v3()
      .display_name("Custom Combo")
      .category("utils")
      .python_module("comfy_extras.nodes_logic")
      .experimental()
      // The options are the user's, written in the frontend: the backend lists none and its
      // validator accepts any choice (which also skips the combo's list check).
      .v3_combo("choice", [](const Services&) { return std::vector<std::string>{}; }, json::object())
      .output("STRING")
      .validator([](const Services&, const NodeInputs&, const std::map<std::string, std::string>&)
                     -> std::variant<bool, std::string> { return true; },
                 {"choice"})
      .run([](ExecutionContext&, const NodeInputs& in) { return NodeOutput({in["choice"]}); });
}

}  // namespace

void register_logic(Registry& r) {
  r.add(ComfySwitchNode());
  r.add(CustomCombo());
}

}  // namespace comfy
