#include "graph/cache.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <set>

#include "graph/registry.h"
#include "graph/validation.h"

namespace comfy {
namespace {

std::vector<std::string> sorted_input_names(const json& node) {
  std::vector<std::string> names;
  if (node.contains("inputs") && node["inputs"].is_object())
    for (auto& [k, v] : node["inputs"].items()) names.push_back(k);
  std::sort(names.begin(), names.end());
  return names;
}

// A value that never equals anything (ComfyUI's NaN fingerprint and unhashable inputs).
json unique_marker() {
  static std::atomic<uint64_t> counter{0};
  return json{{"__never_equal__", counter++}};
}

bool contains_nan(const json& v) {
  if (v.is_number_float()) return std::isnan(v.get<double>());
  if (v.is_structured())
    for (auto& item : v) if (contains_nan(item)) return true;
  return false;
}

}  // namespace

CacheKeys::CacheKeys(const Registry& registry, const json& prompt, const std::map<std::string, json>& fingerprints) {
  auto immediate = [&](const std::string& id, const std::map<std::string, size_t>& order) {
    if (!prompt.contains(id)) return json::array({unique_marker()});
    const json& node = prompt[id];
    std::string class_type = node.value("class_type", "");
    const NodeDef* def = registry.find(class_type);
    json sig = json::array({class_type});
    auto fp = fingerprints.find(id);
    json fingerprint = fp == fingerprints.end() ? json(false) : fp->second;
    sig.push_back(contains_nan(fingerprint) ? unique_marker() : fingerprint);
    if (def && (def->not_idempotent_ || def->has_hidden("UNIQUE_ID"))) sig.push_back(id);
    for (auto& name : sorted_input_names(node)) {
      const json& v = node["inputs"][name];
      if (is_link(v)) {
        auto it = order.find(v[0].get<std::string>());
        sig.push_back(json::array({name, json::array({"ANCESTOR", it == order.end() ? json(nullptr) : json(it->second), v[1]})}));
      } else {
        sig.push_back(json::array({name, v}));
      }
    }
    return sig;
  };

  for (auto& [id, node] : prompt.items()) {
    // Ancestors by a depth-first walk over inputs in sorted name order, numbered by first visit.
    std::vector<std::string> ancestors;
    std::map<std::string, size_t> order;
    std::function<void(const std::string&)> walk = [&](const std::string& n) {
      if (!prompt.contains(n)) return;
      const json& nd = prompt[n];
      for (auto& name : sorted_input_names(nd)) {
        const json& v = nd["inputs"][name];
        if (!is_link(v)) continue;
        std::string a = v[0].get<std::string>();
        if (order.count(a)) continue;
        ancestors.push_back(a);
        order[a] = ancestors.size() - 1;
        walk(a);
      }
    };
    walk(id);
    json sig = json::array({immediate(id, order)});
    for (auto& a : ancestors) sig.push_back(immediate(a, order));
    keys_[id] = sig.dump();
  }
}

std::optional<std::string> CacheKeys::key(const std::string& node_id) const {
  auto it = keys_.find(node_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void OutputCache::set_prompt(std::shared_ptr<const CacheKeys> keys, const std::vector<std::string>& node_ids) {
  keys_ = std::move(keys);
  ++generation_;
  std::set<std::string> used;
  for (auto& id : node_ids)
    if (auto k = keys_->key(id)) used.insert(*k);
  if (policy_ == CachePolicy::classic) {
    for (auto it = entries_.begin(); it != entries_.end();)
      it = used.count(it->first) ? std::next(it) : entries_.erase(it);
  } else if (policy_ == CachePolicy::lru) {
    for (auto& k : used)
      if (entries_.count(k)) last_used_[k] = generation_;
    while (entries_.size() > lru_size_) {
      auto oldest = std::min_element(last_used_.begin(), last_used_.end(),
                                     [](auto& a, auto& b) { return a.second < b.second; });
      if (oldest == last_used_.end() || oldest->second == generation_) break;
      entries_.erase(oldest->first);
      last_used_.erase(oldest);
    }
  } else {
    entries_.clear();
  }
}

const CacheEntry* OutputCache::get(const std::string& node_id) {
  if (policy_ == CachePolicy::none || !keys_) return nullptr;
  auto k = keys_->key(node_id);
  if (!k) return nullptr;
  auto it = entries_.find(*k);
  if (it == entries_.end()) return nullptr;
  last_used_[*k] = generation_;
  return &it->second;
}

void OutputCache::set(const std::string& node_id, CacheEntry entry) {
  if (policy_ == CachePolicy::none || !keys_) return;
  auto k = keys_->key(node_id);
  if (!k) return;
  entries_[*k] = std::move(entry);
  last_used_[*k] = generation_;
}

void OutputCache::clear() {
  entries_.clear();
  last_used_.clear();
}

}  // namespace comfy
