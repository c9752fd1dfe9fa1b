// Every node class the engine knows, in registration order (which is /object_info's order).
// Filled once at start-up by register_all_nodes (nodes/all.cpp), read-only afterwards.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "graph/node_def.h"

namespace comfy {

class Registry {
 public:
  void add(NodeDef def);
  const NodeDef* find(const std::string& class_type) const;
  const std::vector<NodeDef>& all() const { return defs_; }

  // One node's /object_info entry, printed from the same declaration validation reads.
  json object_info(const NodeDef& def, const Services& services) const;
  json object_info(const Services& services) const;  // every node

 private:
  std::vector<NodeDef> defs_;
  std::map<std::string, size_t> index_;
};

// A combo input's options as /object_info and validation see them.
std::vector<std::string> combo_options(const InputSpec& spec, const Services& services);
// The declared spec of one input as ComfyUI prints it: [TYPE, {options}] / [[...], {...}] /
// ["COMBO", {..., "options": [...]}]. `input_config` in validation errors is this value.
json input_config(const NodeDef& def, const InputSpec& spec, const Services& services);

}  // namespace comfy
