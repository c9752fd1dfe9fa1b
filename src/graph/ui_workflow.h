// UI-format (litegraph) workflows, as the ComfyUI frontend saves them, converted to the API
// prompt the frontend would queue (its graphToPrompt): version 0.4 (links as arrays) and schema
// version 1 (links as objects), Reroute/PrimitiveNode/Note nodes resolved away, muted nodes
// (mode 2) dropped with the inputs that point at them, bypassed nodes (mode 4) wired through to
// their first matching-type input, widget values named from each node type's declaration, and
// subgraph instances flattened into "<instance>:<inner>" ids.
#pragma once
#include <string>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "graph/registry.h"
#include "graph/services.h"

namespace comfy {

// A workflow the converter cannot turn into a prompt (malformed JSON shape, a dangling link, an
// unknown node type, widget values that do not fit the node's widgets). The type is ValueError;
// extra_info names the node (node_id, class_type) and input (input_name) when there is one.
class WorkflowError : public ComfyError {
 public:
  WorkflowError(const std::string& message, json extra_info = json::object())
      : ComfyError("ValueError", message), extra_info_(std::move(extra_info)) {}
  const json& extra_info() const { return extra_info_; }
  // ComfyUI's error object: {"type", "message", "details", "extra_info"}.
  json error_object() const;

 private:
  json extra_info_;
};

// True when the document looks like a UI workflow (a "nodes" array) rather than an API prompt.
bool is_ui_workflow(const json& doc);

// The API prompt the frontend builds from `workflow`. Throws WorkflowError.
json ui_workflow_to_prompt(const json& workflow, const Registry& registry, const Services& services);

// One widget of a node as the frontend creates it from the node's declaration.
struct WidgetSlot {
  std::string name;
  std::string type;        // INT, FLOAT, STRING, BOOLEAN, COMBO; "CONTROL" and "UPLOAD" for the extras
  bool serialize = true;   // false: kept in widgets_values but not sent in the prompt
  json default_value;      // what the frontend gives a widget with no stored value
  bool force_input = false;  // an input declared forceInput: a socket, never a widget
};
// The widgets of a node type in widgets_values order: required then optional inputs of widget
// types (INT, FLOAT, STRING, BOOLEAN, COMBO; not forceInput), a control_after_generate combo
// after INT/COMBO inputs that declare it (and INT inputs named seed / noise_seed), and the
// "upload" button after the required inputs of a node with an image_upload combo.
// force_input entries are included (flagged) so old widgets_values that kept them can be read.
std::vector<WidgetSlot> widget_layout(const NodeDef& def, const Services& services);

// widgets_values (array or object) mapped onto the layout: name -> value for every serialized
// widget. Throws WorkflowError when the values cannot belong to these widgets.
json widget_values(const NodeDef& def, const Services& services, const json& widgets_values,
                   const std::string& node_id);

}  // namespace comfy
