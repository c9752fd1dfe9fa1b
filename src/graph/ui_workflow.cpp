// graphToPrompt, as the frontend runs it: every node becomes an "execution DTO" (subgraph
// instances expand into their inner nodes, ids joined with ':'), each input is resolved through
// reroutes, bypassed nodes and subgraph boundaries to the real producing output, and nodes that
// do not run (virtual, muted, bypassed) are left out together with inputs that point at them.
#include "graph/ui_workflow.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

namespace comfy {
namespace {

constexpr int64_t kSubgraphInputNode = -10;   // litegraph's SUBGRAPH_INPUT_ID
constexpr int64_t kSubgraphOutputNode = -20;  // SUBGRAPH_OUTPUT_ID
constexpr int kModeNever = 2, kModeBypass = 4;

// Frontend-only nodes: never queued, resolved through (Reroute) or applied to their targets
// (PrimitiveNode), or plain annotations.
const std::set<std::string> kVirtualTypes = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"};

std::string id_string(const json& id) {
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  if (id.is_number()) return std::to_string(static_cast<int64_t>(id.get<double>()));
  throw WorkflowError("node id " + id.dump() + " is not a number or a string");
}

int64_t as_int(const json& v, const std::string& what) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number()) return static_cast<int64_t>(v.get<double>());
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (const std::exception&) {
    }
  }
  throw WorkflowError(what + " must be a number, got " + v.dump());
}

struct Link {
  std::string origin_id, target_id;  // node ids ("-10"/"-20" for a subgraph's IO nodes)
  int64_t origin_slot = 0, target_slot = 0;
  std::string type;
};

std::string type_string(const json& t) {
  if (t.is_string()) return t.get<std::string>();
  if (t.is_number()) return t.dump();  // litegraph's EVENT/ACTION are numbers
  return "*";
}

// A graph level: the root workflow or one subgraph definition.
struct Level {
  std::map<std::string, const json*> nodes;
  std::vector<const json*> node_order;
  std::map<int64_t, Link> links;
  const json* definition = nullptr;  // the subgraph definition (inputs, outputs), null for the root
};

void read_links(Level& level, const json& links) {
  if (links.is_null()) return;
  if (!links.is_array()) throw WorkflowError("\"links\" must be an array");
  for (auto& l : links) {
    if (l.is_null()) continue;
    Link link;
    int64_t id;
    if (l.is_array()) {  // version 0.4: [id, origin_id, origin_slot, target_id, target_slot, type]
      if (l.size() < 5) throw WorkflowError("link " + l.dump() + " has fewer than 5 fields");
      id = as_int(l[0], "link id");
      link = {id_string(l[1]), id_string(l[3]), as_int(l[2], "link origin_slot"), as_int(l[4], "link target_slot"),
              l.size() > 5 ? type_string(l[5]) : "*"};
    } else if (l.is_object()) {  // schema 1 and subgraph definitions
      for (const char* key : {"id", "origin_id", "origin_slot", "target_id", "target_slot"})
        if (!l.contains(key)) throw WorkflowError("link " + l.dump() + " has no \"" + key + "\"");
      id = as_int(l["id"], "link id");
      link = {id_string(l["origin_id"]), id_string(l["target_id"]), as_int(l["origin_slot"], "link origin_slot"),
              as_int(l["target_slot"], "link target_slot"), type_string(l.value("type", json("*")))};
    } else {
      throw WorkflowError("link " + l.dump() + " is neither an array nor an object");
    }
    level.links[id] = link;
  }
}

void read_level(Level& level, const json& graph) {
  if (!graph.contains("nodes") || !graph["nodes"].is_array()) throw WorkflowError("workflow has no \"nodes\" array");
  for (auto& n : graph["nodes"]) {
    if (!n.is_object() || !n.contains("id") || !n.contains("type") || !n["type"].is_string())
      throw WorkflowError("every node needs an \"id\" and a \"type\": " + n.dump().substr(0, 120));
    std::string id = id_string(n["id"]);
    if (level.nodes.count(id)) throw WorkflowError("two nodes have the id " + id, json{{"node_id", id}});
    level.nodes[id] = &n;
    level.node_order.push_back(&n);
  }
  read_links(level, graph.value("links", json::array()));
}

// litegraph's isValidConnection: "*"/"" match anything, else a case-insensitive match of any
// pair of comma-separated alternatives.
bool valid_connection(std::string a, std::string b) {
  if (a.empty() || a == "*" || b.empty() || b == "*" || a == b) return true;
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t at; (at = s.find(',', start)) != std::string::npos; start = at + 1) out.push_back(s.substr(start, at - start));
    out.push_back(s.substr(start));
    return out;
  };
  a = lower(a);
  b = lower(b);
  for (auto& x : split(a))
    for (auto& y : split(b))
      if (x == y) return true;
  return false;
}

struct Dto {
  std::string id;                  // execution id: "5", "10:3", ...
  std::vector<std::string> path;   // subgraph instance ids above this node
  const json* node = nullptr;
  const Level* level = nullptr;
  Dto* instance = nullptr;         // the subgraph node this one is inside, if any
  const Level* subgraph = nullptr; // set when this node is a subgraph instance
  int mode = 0;
  json widgets = json::object();   // name -> value of serialized widgets (emitted nodes)
  json promoted = json::object();  // subgraph instances: input name -> widget value given from outside
};

struct Resolved {
  std::string origin_id;
  int64_t origin_slot = 0;
  std::optional<json> widget_value;
};

class Converter {
 public:
  Converter(const json& workflow, const Registry& registry, const Services& services)
      : registry_(registry), services_(services) {
    if (!workflow.is_object()) throw WorkflowError("a UI workflow must be a JSON object");
    read_level(root_, workflow);
    collect_definitions(workflow);
    add_level(root_, {}, nullptr, 0);
  }

  json convert() {
    apply_primitives();
    json output = json::object();
    for (Dto* dto : order_) {
      const std::string& type = (*dto->node)["type"].get<std::string>();
      if (dto->subgraph || kVirtualTypes.count(type) || dto->mode == kModeNever || dto->mode == kModeBypass) continue;
      json inputs = json::object();
      for (auto& [name, value] : dto->widgets.items())
        inputs[name] = value.is_array() ? json{{"__value__", value}} : value;
      const json& node_inputs = dto->node->value("inputs", json::array());
      for (size_t i = 0; i < node_inputs.size(); ++i) {
        std::set<std::string> visited;
        std::optional<Resolved> r = resolve_input(*dto, static_cast<int64_t>(i), visited, std::nullopt);
        if (!r) continue;
        std::string name = node_inputs[i].value("name", "");
        if (r->widget_value) {
          inputs[name] = r->widget_value->is_array() ? json{{"__value__", *r->widget_value}} : *r->widget_value;
        } else {
          inputs[name] = json::array({r->origin_id, r->origin_slot});
        }
      }
      json title = dto->node->contains("title") && (*dto->node)["title"].is_string() ? (*dto->node)["title"]
                                                                                       : json(display_name(type));
      output[dto->id] = json{{"inputs", inputs}, {"class_type", type}, {"_meta", {{"title", title}}}};
    }
    // Inputs linked to nodes that are not queued (muted, or unresolvable) are dropped.
    for (auto& [id, entry] : output.items()) {
      json& inputs = entry["inputs"];
      std::vector<std::string> gone;
      for (auto& [name, value] : inputs.items())
        if (value.is_array() && value.size() == 2 && !output.contains(value[0].get<std::string>())) gone.push_back(name);
      for (auto& name : gone) inputs.erase(name);
    }
    return output;
  }

 private:
  const Registry& registry_;
  const Services& services_;
  Level root_;
  std::map<std::string, std::unique_ptr<Level>> definitions_;  // subgraph id -> level
  std::map<std::string, std::unique_ptr<Dto>> dtos_;
  std::vector<Dto*> order_;

  void collect_definitions(const json& graph) {
    if (!graph.contains("definitions") || !graph["definitions"].is_object()) return;
    // A reference into the workflow (not value(), which copies): levels keep pointers to nodes.
    const json& definitions = graph["definitions"];
    if (!definitions.contains("subgraphs")) return;
    const json& subgraphs = definitions["subgraphs"];
    if (!subgraphs.is_array()) throw WorkflowError("definitions.subgraphs must be an array");
    for (auto& sg : subgraphs) {
      if (!sg.is_object() || !sg.contains("id") || !sg["id"].is_string())
        throw WorkflowError("a subgraph definition has no \"id\"");
      auto level = std::make_unique<Level>();
      read_level(*level, sg);
      level->definition = &sg;
      definitions_[sg["id"].get<std::string>()] = std::move(level);
      collect_definitions(sg);
    }
  }

  std::string display_name(const std::string& type) const {
    const NodeDef* def = registry_.find(type);
    return def && def->display_name_ ? *def->display_name_ : type;
  }

  // Nodes of one level in execution order (producers first, then saved "order", then id), each
  // subgraph instance followed by its inner nodes.
  void add_level(const Level& level, const std::vector<std::string>& path, Dto* instance, int depth) {
    if (depth > 32) throw WorkflowError("subgraphs nest deeper than 32 levels (a subgraph containing itself?)");
    for (const json* n : topological(level)) {
      auto dto = std::make_unique<Dto>();
      std::string own = id_string((*n)["id"]);
      dto->path = path;
      dto->id = path.empty() ? own : join(path) + ":" + own;
      dto->node = n;
      dto->level = &level;
      dto->instance = instance;
      dto->mode = n->contains("mode") && (*n)["mode"].is_number() ? (*n)["mode"].get<int>() : 0;
      // A muted or bypassed instance mutes or bypasses everything inside it.
      if (instance && (instance->mode == kModeNever || instance->mode == kModeBypass)) dto->mode = instance->mode;
      const std::string& type = (*n)["type"].get<std::string>();
      auto def = definitions_.find(type);
      Dto* raw = dto.get();
      dtos_[raw->id] = std::move(dto);
      order_.push_back(raw);
      if (def != definitions_.end()) {
        raw->subgraph = def->second.get();
        promote_widgets(*raw);
        std::vector<std::string> inner = path;
        inner.push_back(own);
        add_level(*raw->subgraph, inner, raw, depth + 1);
      } else if (!kVirtualTypes.count(type) && raw->mode != kModeNever && raw->mode != kModeBypass) {
        const NodeDef* nd = registry_.find(type);
        if (!nd) {
          std::string hint = type.rfind("workflow>", 0) == 0 || type.rfind("workflow/", 0) == 0
                                 ? " (a legacy group node: convert it to a subgraph in the frontend)"
                                 : "";
          throw WorkflowError("node " + raw->id + ": unknown node type " + type + hint,
                              json{{"node_id", raw->id}, {"class_type", type}});
        }
        raw->widgets = widget_values(*nd, services_, n->value("widgets_values", json()), raw->id);
      }
    }
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (auto& p : parts) out += (out.empty() ? "" : ":") + p;
    return out;
  }

  static std::vector<const json*> topological(const Level& level) {
    std::vector<const json*> nodes = level.node_order;
    std::stable_sort(nodes.begin(), nodes.end(), [](const json* a, const json* b) {
      auto order = [](const json* n) {
        auto it = n->find("order");
        return it != n->end() && it->is_number() ? it->get<double>() : 0.0;
      };
      return order(a) < order(b);
    });
    std::map<std::string, int> pending;
    std::map<std::string, std::vector<std::string>> consumers;
    for (auto& [id, link] : level.links) {
      if (!level.nodes.count(link.origin_id) || !level.nodes.count(link.target_id)) continue;
      ++pending[link.target_id];
      consumers[link.origin_id].push_back(link.target_id);
    }
    std::vector<const json*> out;
    std::set<std::string> done;
    while (out.size() < nodes.size()) {
      bool progressed = false;
      for (const json* n : nodes) {
        std::string id = id_string((*n)["id"]);
        if (done.count(id) || pending[id] > 0) continue;
        done.insert(id);
        out.push_back(n);
        for (auto& c : consumers[id]) --pending[c];
        progressed = true;
        break;
      }
      if (!progressed) {  // a cycle: keep the saved order for the rest (validation reports it)
        for (const json* n : nodes)
          if (!done.count(id_string((*n)["id"]))) out.push_back(n), done.insert(id_string((*n)["id"]));
      }
    }
    return out;
  }

  // Widget values a subgraph instance carries for inputs promoted from inside (instance inputs
  // with a "widget" entry, in order, take the instance's widgets_values).
  static void promote_widgets(Dto& dto) {
    const json& values = dto.node->value("widgets_values", json());
    const json& inputs = dto.node->value("inputs", json::array());
    size_t k = 0;
    for (auto& in : inputs) {
      if (!in.is_object() || !in.contains("widget")) continue;
      if (values.is_array() && k < values.size()) dto.promoted[in.value("name", "")] = values[k];
      else if (values.is_object() && values.contains(in.value("name", ""))) dto.promoted[in.value("name", "")] = values[in.value("name", "")];
      ++k;
    }
  }

  Dto& dto_at(const std::vector<std::string>& path, const std::string& own) {
    std::string id = path.empty() ? own : join(path) + ":" + own;
    auto it = dtos_.find(id);
    if (it == dtos_.end()) throw WorkflowError("no node " + id + " in the workflow", json{{"node_id", id}});
    return *it->second;
  }

  static std::string input_name(const Dto& dto, int64_t slot) {
    const json& inputs = dto.node->value("inputs", json::array());
    return slot >= 0 && slot < static_cast<int64_t>(inputs.size()) ? inputs[slot].value("name", "") : "";
  }

  WorkflowError dangling(const Dto& dto, int64_t slot, const std::string& why) {
    std::string name = input_name(dto, slot);
    return WorkflowError("node " + dto.id + " (" + (*dto.node)["type"].get<std::string>() + ") input " +
                             (name.empty() ? std::to_string(slot) : name) + ": " + why,
                         json{{"node_id", dto.id}, {"class_type", (*dto.node)["type"]}, {"input_name", name}});
  }

  std::optional<Resolved> resolve_input(Dto& dto, int64_t slot, std::set<std::string>& visited,
                                        std::optional<std::string> type) {
    if (!visited.insert(dto.id + "[I]" + std::to_string(slot)).second)
      throw WorkflowError("circular reference while resolving input " + std::to_string(slot) + " of node " + dto.id,
                          json{{"node_id", dto.id}});
    const json& inputs = dto.node->value("inputs", json::array());
    if (slot < 0 || slot >= static_cast<int64_t>(inputs.size()) || !inputs[slot].is_object())
      throw dangling(dto, slot, "no such input slot");
    const json& input = inputs[slot];
    if (!input.contains("link") || input["link"].is_null()) return std::nullopt;
    int64_t link_id = as_int(input["link"], "input link");
    auto it = dto.level->links.find(link_id);
    if (it == dto.level->links.end()) throw dangling(dto, slot, "link " + std::to_string(link_id) + " does not exist");
    const Link& link = it->second;
    std::string want = type ? *type : type_string(input.value("type", json("*")));

    if (dto.instance && link.origin_id == std::to_string(kSubgraphInputNode)) {
      // The link comes in through the subgraph's input: continue outside, on the instance.
      Dto& outer = *dto.instance;
      const json& outer_inputs = outer.node->value("inputs", json::array());
      if (link.origin_slot < 0 || link.origin_slot >= static_cast<int64_t>(outer_inputs.size()))
        throw dangling(dto, slot, "subgraph input " + std::to_string(link.origin_slot) + " is missing on node " + outer.id);
      const json& outer_input = outer_inputs[link.origin_slot];
      if (!outer_input.contains("link") || outer_input["link"].is_null()) {
        std::string name = outer_input.value("name", "");
        if (outer.promoted.contains(name)) return Resolved{outer.id, -1, outer.promoted[name]};
        return std::nullopt;
      }
      return resolve_input(outer, link.origin_slot, visited, std::nullopt);
    }
    auto origin = dto.level->nodes.find(link.origin_id);
    if (origin == dto.level->nodes.end())
      throw dangling(dto, slot, "link " + std::to_string(link_id) + " comes from node " + link.origin_id + ", which does not exist");
    return resolve_output(dto_at(dto.path, link.origin_id), link.origin_slot, want, visited);
  }

  std::optional<Resolved> resolve_output(Dto& dto, int64_t slot, const std::string& type, std::set<std::string>& visited) {
    if (!visited.insert(dto.id + "[O]" + std::to_string(slot)).second)
      throw WorkflowError("circular reference while resolving output " + std::to_string(slot) + " of node " + dto.id,
                          json{{"node_id", dto.id}});
    const std::string& node_type = (*dto.node)["type"].get<std::string>();
    if (dto.mode == kModeBypass) {
      int64_t index = bypass_slot(dto, slot, type);
      if (index < 0) return std::nullopt;  // nothing of that type goes in: the input stays unset
      return resolve_input(dto, index, visited, std::nullopt);
    }
    if (dto.subgraph) {
      if (dto.mode == kModeNever) return Resolved{dto.id, slot, std::nullopt};  // dropped with the node
      const Link* inner = nullptr;
      for (auto& [id, link] : dto.subgraph->links)
        if (link.target_id == std::to_string(kSubgraphOutputNode) && link.target_slot == slot) inner = &link;
      if (!inner) return std::nullopt;
      if (inner->origin_id == std::to_string(kSubgraphInputNode))  // an input wired straight to an output
        return resolve_input(dto, inner->origin_slot, visited, type);
      if (!dto.subgraph->nodes.count(inner->origin_id))
        throw WorkflowError("subgraph " + node_type + " output " + std::to_string(slot) + " comes from node " +
                                inner->origin_id + ", which does not exist",
                            json{{"node_id", dto.id}, {"class_type", node_type}});
      std::vector<std::string> path = dto.path;
      path.push_back(id_string((*dto.node)["id"]));
      return resolve_output(dto_at(path, inner->origin_id), inner->origin_slot, type, visited);
    }
    if (kVirtualTypes.count(node_type)) {
      const json& inputs = dto.node->value("inputs", json::array());
      if (slot < static_cast<int64_t>(inputs.size())) return resolve_input(dto, slot, visited, type);
      return std::nullopt;  // a PrimitiveNode: its value was written into the target widgets
    }
    return Resolved{dto.id, slot, std::nullopt};
  }

  // The input a bypassed node hands through for output `slot` wanted as `type`: the same index
  // when its type fits, else the first input of exactly that type, else the first that fits.
  static int64_t bypass_slot(const Dto& dto, int64_t slot, const std::string& type) {
    const json& inputs = dto.node->value("inputs", json::array());
    const json& outputs = dto.node->value("outputs", json::array());
    int64_t n = static_cast<int64_t>(inputs.size());
    if (type == "*" || type.empty()) return n > slot ? slot : 0;
    std::string out_type = slot < static_cast<int64_t>(outputs.size()) && outputs[slot].is_object()
                               ? type_string(outputs[slot].value("type", json("*")))
                               : "*";
    auto in_type = [&](int64_t i) { return type_string(inputs[i].value("type", json("*"))); };
    if (slot < n && valid_connection(in_type(slot), out_type) && valid_connection(in_type(slot), type)) return slot;
    for (int64_t i = 0; i < n; ++i)
      if (in_type(i) == type) return i;
    for (int64_t i = 0; i < n; ++i)
      if (valid_connection(in_type(i), out_type) && valid_connection(in_type(i), type)) return i;
    return -1;
  }

  // PrimitiveNode.applyToGraph: its value replaces the widget of every input it feeds (through
  // reroutes too).
  void apply_primitives() {
    for (Dto* dto : order_) {
      if ((*dto->node)["type"] != "PrimitiveNode") continue;
      const json& values = dto->node->value("widgets_values", json::array());
      if (!values.is_array() || values.empty()) continue;
      std::set<std::string> seen;
      apply_to_targets(*dto, values[0], seen);
    }
  }

  void apply_to_targets(Dto& source, const json& value, std::set<std::string>& seen) {
    if (!seen.insert(source.id).second) return;
    const json& outputs = source.node->value("outputs", json::array());
    if (outputs.empty() || !outputs[0].is_object()) return;
    const json& links = outputs[0].value("links", json::array());
    if (!links.is_array()) return;
    for (auto& l : links) {
      if (l.is_null()) continue;
      auto it = source.level->links.find(as_int(l, "output link"));
      if (it == source.level->links.end()) continue;
      const Link& link = it->second;
      if (!source.level->nodes.count(link.target_id)) continue;
      Dto& target = dto_at(source.path, link.target_id);
      if ((*target.node)["type"] == "Reroute") {
        apply_to_targets(target, value, seen);
        continue;
      }
      const json& inputs = target.node->value("inputs", json::array());
      if (link.target_slot < 0 || link.target_slot >= static_cast<int64_t>(inputs.size())) continue;
      const json& input = inputs[link.target_slot];
      std::string widget = input.contains("widget") && input["widget"].is_object() ? input["widget"].value("name", "") : "";
      if (widget.empty()) continue;
      if (target.subgraph) target.promoted[input.value("name", "")] = value;
      else if (target.widgets.contains(widget)) target.widgets[widget] = value;
    }
  }
};

}  // namespace

bool is_ui_workflow(const json& doc) {
  return doc.is_object() && doc.contains("nodes") && doc["nodes"].is_array();
}

json ui_workflow_to_prompt(const json& workflow, const Registry& registry, const Services& services) {
  try {
    Converter converter(workflow, registry, services);
    return converter.convert();
  } catch (const json::exception& e) {
    // A field of the wrong JSON type somewhere (a node's inputs that are not objects, ...).
    throw WorkflowError(std::string("malformed UI workflow: ") + e.what());
  }
}

}  // namespace comfy
