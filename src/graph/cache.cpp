#include "graph/cache.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <set>

#include <openssl/evp.h>

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

std::string sha256_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
  return out;
}

}  // namespace

// A node's key is its immediate signature (class, change fingerprint, constants, and for each
// linked input the digest of the ancestor's key and the output index), so it embeds the whole
// ancestor graph as ComfyUI's CacheKeySetInputSignature does. ComfyUI re-lists every ancestor in
// each key (quadratic in the graph's depth: 5 ms per node at 400 nodes); a digest per ancestor
// keeps each key as long as the node's own inputs. Two inputs linked to distinct ancestors whose
// keys are equal compute the same value, so merging them cannot return a wrong output.
CacheKeys::CacheKeys(const Registry& registry, const json& prompt, const std::map<std::string, json>& fingerprints) {
  // ordered_json looks keys up linearly: index the prompt once.
  std::unordered_map<std::string, const json*> nodes;
  for (auto& [id, node] : prompt.items()) nodes.emplace(id, &node);
  std::unordered_map<std::string, std::string> digests;  // node id -> SHA-256 of its key
  std::set<std::string> visiting;

  std::function<std::string(const std::string&)> key_of;
  auto digest_of = [&](const std::string& id) -> std::string {
    if (auto it = digests.find(id); it != digests.end()) return it->second;
    // A missing ancestor, or a cycle (validation refuses both), never equals anything.
    if (!nodes.count(id) || visiting.count(id)) return unique_marker().dump();
    return digests[id] = sha256_hex(key_of(id));
  };
  key_of = [&](const std::string& id) -> std::string {
    if (auto it = keys_.find(id); it != keys_.end()) return it->second;
    const json& node = *nodes.at(id);
    visiting.insert(id);
    std::string class_type = node.value("class_type", "");
    const NodeDef* def = registry.find(class_type);
    json sig = json::array({class_type});
    auto fp = fingerprints.find(id);
    json fingerprint = fp == fingerprints.end() ? json(false) : fp->second;
    sig.push_back(contains_nan(fingerprint) ? unique_marker() : fingerprint);
    if (def && (def->not_idempotent_ || def->has_hidden("UNIQUE_ID"))) sig.push_back(id);
    for (auto& name : sorted_input_names(node)) {
      const json& v = node["inputs"][name];
      if (is_link(v))
        sig.push_back(json::array({name, json::array({"ANCESTOR", digest_of(v[0].get<std::string>()), v[1]})}));
      else
        sig.push_back(json::array({name, v}));
    }
    visiting.erase(id);
    return keys_[id] = sig.dump();
  };
  for (auto& [id, node] : nodes) key_of(id);
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
