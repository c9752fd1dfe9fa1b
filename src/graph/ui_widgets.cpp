// Which widgets the frontend gives a node (from the node's declaration, as /object_info prints it)
// and how a saved workflow's widgets_values land on them.
#include <set>

#include "graph/ui_workflow.h"

namespace comfy {
namespace {

const std::set<std::string> kWidgetTypes = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"};
const std::set<std::string> kControlValues = {"fixed", "increment", "decrement", "randomize"};

bool is_upload_combo(const InputSpec& spec) {
  return spec.type == "COMBO" && (spec.options.value("image_upload", false) ||
                                  spec.options.value("video_upload", false) ||
                                  spec.options.value("audio_upload", false) ||
                                  spec.options.value("animated_image_upload", false));
}

// The frontend's value for a widget nobody stored a value for: the declared default, else the
// first combo option, 0, "" or false.
json default_for(const InputSpec& spec, const Services& services) {
  if (spec.options.is_object() && spec.options.contains("default")) return spec.options["default"];
  if (spec.type == "COMBO") {
    std::vector<std::string> options = combo_options(spec, services);
    return options.empty() ? json(nullptr) : json(options.front());
  }
  if (spec.type == "INT" || spec.type == "FLOAT") return 0;
  if (spec.type == "BOOLEAN") return false;
  return "";
}

// useIntWidget / useComboWidget: the declared control_after_generate, or for INT inputs named
// seed or noise_seed (the legacy convention) a control defaulting to "randomize".
json control_for(const InputSpec& spec) {
  json declared = spec.options.is_object() ? spec.options.value("control_after_generate", json()) : json();
  bool wanted = declared.is_null() ? (spec.type == "INT" && (spec.name == "seed" || spec.name == "noise_seed"))
                                   : (declared.is_string() || (declared.is_boolean() && declared.get<bool>()));
  if (!wanted) return nullptr;
  return declared.is_string() ? declared : json("randomize");
}

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

bool fits(const WidgetSlot& w, const json& v) {
  if (w.type == "INT" || w.type == "FLOAT") return v.is_number() || v.is_null();
  if (w.type == "BOOLEAN") return v.is_boolean();
  if (w.type == "STRING") return v.is_string();
  if (w.type == "CONTROL") return v.is_null() || (v.is_string() && kControlValues.count(v.get<std::string>()));
  if (w.type == "COMBO") return !v.is_object();
  return true;  // UPLOAD
}

}  // namespace

json WorkflowError::error_object() const {
  return json{{"type", "invalid_prompt"},
              {"message", "Cannot convert the UI workflow to a prompt"},
              {"details", what()},
              {"extra_info", extra_info_}};
}

std::vector<WidgetSlot> widget_layout(const NodeDef& def, const Services& services) {
  std::vector<WidgetSlot> out;
  auto add = [&](const InputSpec& spec) {
    if (!kWidgetTypes.count(spec.type)) return;
    bool force = spec.options.is_object() && spec.options.value("forceInput", false);
    out.push_back({spec.name, spec.type, true, default_for(spec, services), force});
    if (force) return;
    if (spec.type == "INT" || spec.type == "COMBO") {
      json control = control_for(spec);
      if (!control.is_null()) out.push_back({"control_after_generate", "CONTROL", false, control, false});
    }
  };
  bool upload = false;
  for (auto& spec : def.required) {
    add(spec);
    upload = upload || is_upload_combo(spec);
  }
  // Comfy.UploadImage appends an "upload" input to the required ones: a button whose value is
  // saved ("image") but never queued.
  if (upload) out.push_back({"upload", "UPLOAD", false, "image", false});
  for (auto& spec : def.optional) add(spec);
  return out;
}

json widget_values(const NodeDef& def, const Services& services, const json& widgets_values,
                   const std::string& node_id) {
  std::vector<WidgetSlot> all = widget_layout(def, services), layout, with_forced;
  for (auto& w : all) {
    with_forced.push_back(w);
    if (!w.force_input) layout.push_back(w);
  }
  auto error = [&](const std::string& why) {
    std::string names;
    for (auto& w : layout) names += (names.empty() ? "" : ", ") + w.name;
    return WorkflowError("node " + node_id + " (" + def.name + "): widgets_values " + describe(widgets_values) +
                             " do not fit its widgets [" + names + "]: " + why,
                         json{{"node_id", node_id}, {"class_type", def.name}});
  };

  json out = json::object();
  if (widgets_values.is_null()) {
    for (auto& w : layout)
      if (w.serialize) out[w.name] = w.default_value;
    return out;
  }
  if (widgets_values.is_object()) {  // some nodes save their widgets by name
    for (auto& w : layout) {
      if (!w.serialize) continue;
      json v = widgets_values.contains(w.name) ? widgets_values[w.name] : w.default_value;
      if (!fits(w, v)) throw error("value " + describe(v) + " for " + w.name + " (" + w.type + ") does not fit");
      out[w.name] = v;
    }
    return out;
  }
  if (!widgets_values.is_array()) throw error("widgets_values must be an array or an object");

  // Workflows saved before forceInput inputs stopped being widgets still hold a value for them
  // (the frontend's migrateWidgetsValues drops those when the count says so).
  const std::vector<WidgetSlot>& slots =
      widgets_values.size() == with_forced.size() && with_forced.size() != layout.size() ? with_forced : layout;
  if (widgets_values.size() > slots.size())
    throw error(std::to_string(widgets_values.size()) + " values for " + std::to_string(slots.size()) + " widgets");
  for (size_t i = 0; i < slots.size(); ++i) {
    const WidgetSlot& w = slots[i];
    json v = i < widgets_values.size() ? widgets_values[i] : w.default_value;
    if (!fits(w, v))
      throw error("value " + describe(v) + " at position " + std::to_string(i) + " does not fit widget " + w.name +
                  " (" + w.type + ")");
    if (w.serialize && !w.force_input) out[w.name] = v;
  }
  return out;
}

}  // namespace comfy
