// ComfyUI's comfy_extras/nodes_preview_any.py: shows any value as text in the UI.
#include "nodes/all.h"

namespace comfy {
namespace {

// The text ComfyUI shows: strings as they are, numbers and booleans as Python's str(), other
// JSON as json.dumps(indent=4) (ASCII-escaped, as Python's default), anything else as its repr.
std::string preview_text(const Value& source) {
  if (source.is_none()) return "None";
  if (source.is_object()) return source.object()->repr();
  const json& d = source.data();
  if (d.is_string()) return d.get<std::string>();
  if (d.is_primitive()) return py_str(d);
  return d.dump(4, ' ', true);
}

NodeDef PreviewAny() {
  return NodeDef("PreviewAny")
      .display_name("Preview as Text")
      .category("utils")
      .python_module("comfy_extras.nodes_preview_any")
      .input("source", "*", json::object())
      .output_node()
      .run([](ExecutionContext&, const NodeInputs& in) {
        return NodeOutput({}, json{{"text", json::array({preview_text(in["source"])})}});
      });
}

}  // namespace

void register_preview_any(Registry& r) { r.add(PreviewAny()); }

}  // namespace comfy
