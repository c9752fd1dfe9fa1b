// The outputs cache (spec 4.4). What a key is (a node's input signature, which embeds every
// ancestor's class, constants and change fingerprint) is kept apart from how entries are kept
// (classic: only what the current prompt uses; LRU: the N most recent; none).
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/json.h"
#include "graph/value.h"

namespace comfy {

class Registry;

struct CacheEntry {
  json ui;                                  // {"meta": ..., "output": ...} or null
  std::vector<std::vector<Value>> outputs;  // per slot, the list of values
};

enum class CachePolicy { classic, lru, none };

// Input signatures of every node of one prompt.
class CacheKeys {
 public:
  // `fingerprints`: the is_changed value per node id (absent = false; NaN = never equal).
  CacheKeys(const Registry& registry, const json& prompt, const std::map<std::string, json>& fingerprints);
  // The key of a node, or nullopt when the node is not part of the prompt.
  std::optional<std::string> key(const std::string& node_id) const;

 private:
  std::map<std::string, std::string> keys_;
};

class OutputCache {
 public:
  explicit OutputCache(CachePolicy policy = CachePolicy::classic, size_t lru_size = 0)
      : policy_(policy), lru_size_(lru_size) {}

  // A new prompt starts: its keys become current and entries it does not use are dropped
  // (classic), or kept up to the LRU size.
  void set_prompt(std::shared_ptr<const CacheKeys> keys, const std::vector<std::string>& node_ids);
  const CacheEntry* get(const std::string& node_id);
  void set(const std::string& node_id, CacheEntry entry);
  void clear();
  size_t size() const { return entries_.size(); }

 private:
  CachePolicy policy_;
  size_t lru_size_;
  std::shared_ptr<const CacheKeys> keys_;
  std::unordered_map<std::string, CacheEntry> entries_;
  std::unordered_map<std::string, uint64_t> last_used_;  // LRU generation per key
  uint64_t generation_ = 0;
};

}  // namespace comfy
