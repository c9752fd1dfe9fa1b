#include "graph/execution_list.h"

#include <algorithm>

#include "graph/registry.h"
#include "graph/validation.h"

namespace comfy {

ExecutionList::ExecutionList(const Registry& registry, const json& prompt,
                             std::function<bool(const std::string&)> is_cached)
    : registry_(registry), prompt_(prompt), is_cached_(std::move(is_cached)) {}

void ExecutionList::add_node(const std::string& start, bool include_lazy) {
  std::vector<std::string> stack{start};
  struct Link { std::string from; int socket; std::string to; };
  std::vector<Link> links;
  while (!stack.empty()) {
    std::string id = stack.back();
    stack.pop_back();
    if (pending_.count(id)) continue;
    pending_.insert(id);
    pending_order_.push_back(id);
    block_count_[id] = 0;
    blocking_[id];
    if (!prompt_.contains(id)) continue;
    const json& node = prompt_[id];
    const NodeDef* def = registry_.find(node.value("class_type", ""));
    if (!node.contains("inputs") || !node["inputs"].is_object()) continue;
    for (auto& [name, value] : node["inputs"].items()) {
      if (!is_link(value)) continue;
      const InputSpec* spec = def ? def->find_input(name) : nullptr;
      bool lazy = spec && spec->lazy();
      if (!include_lazy && lazy) continue;
      std::string from = value[0].get<std::string>();
      if (!is_cached_(from)) stack.push_back(from);
      links.push_back({from, value[1].get<int>(), id});
    }
  }
  for (auto& l : links) add_strong_link(l.from, l.socket, l.to);
}

void ExecutionList::add_strong_link(const std::string& from, int socket, const std::string& to) {
  if (is_cached_(from)) return;
  add_node(from);
  auto& targets = blocking_[from];
  if (!targets.count(to)) {
    targets[to];
    blocked_order_[from].push_back(to);
    block_count_[to] += 1;
  }
  targets[to].insert(socket);
}

void ExecutionList::make_input_strong_link(const std::string& to, const std::string& input_name) {
  const json& value = prompt_[to]["inputs"][input_name];
  if (!is_link(value)) return;
  add_strong_link(value[0].get<std::string>(), value[1].get<int>(), to);
}

bool ExecutionList::is_output(const std::string& id) const {
  if (!prompt_.contains(id)) return false;
  const NodeDef* def = registry_.find(prompt_[id].value("class_type", ""));
  return def && def->output_node_;
}

std::optional<std::string> ExecutionList::stage(std::string* cycle_node) {
  if (pending_.empty()) return std::nullopt;
  std::vector<std::string> ready;
  for (auto& id : pending_order_)
    if (pending_.count(id) && block_count_[id] == 0) ready.push_back(id);
  if (ready.empty()) {
    auto cycle = nodes_in_cycle();
    if (cycle_node) *cycle_node = cycle.empty() ? pending_order_.front() : cycle.front();
    return std::nullopt;
  }
  auto blocked = [&](const std::string& id) -> const std::vector<std::string>& {
    static const std::vector<std::string> none;
    auto it = blocked_order_.find(id);
    return it == blocked_order_.end() ? none : it->second;
  };
  // UX-friendly pick: outputs first, then what feeds an output, then two levels up.
  std::optional<std::string> pick;
  for (auto& id : ready)
    if (!pick && is_output(id)) pick = id;
  for (auto& id : ready)
    for (auto& b : blocked(id))
      if (!pick && is_output(b)) pick = id;
  for (auto& id : ready)
    for (auto& b : blocked(id))
      for (auto& b2 : blocked(b))
        if (!pick && is_output(b2)) pick = id;
  staged_ = pick ? *pick : ready.front();
  return staged_;
}

void ExecutionList::complete() {
  if (!staged_) return;
  std::string id = *staged_;
  staged_.reset();
  pending_.erase(id);
  pending_order_.erase(std::remove(pending_order_.begin(), pending_order_.end(), id), pending_order_.end());
  for (auto& [to, sockets] : blocking_[id]) block_count_[to] -= 1;
  blocking_.erase(id);
  blocked_order_.erase(id);
}

std::vector<std::string> ExecutionList::nodes_in_cycle() const {
  // Dissolve the graph from its sources; what cannot dissolve lies on (or behind) a cycle.
  std::map<std::string, std::set<std::string>> blocked_by;
  for (auto& id : pending_order_) blocked_by[id];
  for (auto& [from, targets] : blocking_)
    for (auto& [to, sockets] : targets)
      if (blocked_by.count(to)) blocked_by[to].insert(from);
  while (true) {
    std::vector<std::string> free;
    for (auto& [id, deps] : blocked_by)
      if (deps.empty()) free.push_back(id);
    if (free.empty()) break;
    for (auto& id : free) {
      for (auto& [to, deps] : blocked_by) deps.erase(id);
      blocked_by.erase(id);
    }
  }
  std::vector<std::string> out;
  for (auto& id : pending_order_)
    if (blocked_by.count(id)) out.push_back(id);
  return out;
}

}  // namespace comfy
