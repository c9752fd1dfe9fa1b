// The order nodes run in (spec 4.3): a topological "dissolve" over the nodes still needed,
// picking among ready nodes the way ComfyUI's ExecutionList does (output nodes first, then what
// feeds them), and naming a cycle when nothing is ready.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"

namespace comfy {

class Registry;

class ExecutionList {
 public:
  // `is_cached(id)`: the node's outputs are already known, so it need not run.
  ExecutionList(const Registry& registry, const json& prompt, std::function<bool(const std::string&)> is_cached);

  // Adds a node and every uncached node it depends on through non-lazy links.
  void add_node(const std::string& id, bool include_lazy = false);
  // A lazy input the node now needs becomes a strong dependency.
  void make_input_strong_link(const std::string& to_node, const std::string& input_name);

  bool empty() const { return pending_.empty(); }
  // The next node to run, or nullopt with `cycle` set to the node to blame.
  std::optional<std::string> stage(std::string* cycle_node);
  void unstage() { staged_.reset(); }
  void complete();  // the staged node is done: it unblocks what waits on it

 private:
  void add_strong_link(const std::string& from, int from_socket, const std::string& to);
  bool is_output(const std::string& id) const;
  std::vector<std::string> nodes_in_cycle() const;

  const Registry& registry_;
  const json& prompt_;
  std::function<bool(const std::string&)> is_cached_;
  std::vector<std::string> pending_order_;  // insertion order of pending nodes
  std::set<std::string> pending_;
  std::map<std::string, int> block_count_;
  // blocking_[from][to] = sockets of `from` that `to` waits on
  std::map<std::string, std::map<std::string, std::set<int>>> blocking_;
  std::map<std::string, std::vector<std::string>> blocked_order_;
  std::optional<std::string> staged_;
};

}  // namespace comfy
