// The Brownian motion behind ComfyUI's SDE samplers: torchsde's BrownianTree (a BrownianInterval
// with halfway_tree=True, tol=1e-6, pool_size=24, no Levy area), whose nodes draw their noise
// from torch CPU generators seeded by numpy's SeedSequence. Reproduced exactly so that the SDE
// samplers give ComfyUI's numbers for a seed. A path depends only on the entropy, never on the
// order or the set of points queried.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

namespace comfy {

// numpy.random.SeedSequence(entropy, spawn_key, pool_size).generate_state(n) (uint32 words).
class SeedSequence {
 public:
  SeedSequence(uint64_t entropy, const std::vector<uint64_t>& spawn_key, size_t pool_size);
  std::vector<uint32_t> generate_state(size_t n_words) const;
  const std::vector<uint32_t>& pool() const { return pool_; }

 private:
  std::vector<uint32_t> pool_;
};

class BrownianTree {
 public:
  // torchsde.BrownianTree(t0, w0=zeros(size), t1, entropy) on the CPU in float32 (t0 < t1).
  BrownianTree(double t0, double t1, std::vector<int64_t> size, uint64_t entropy);
  ~BrownianTree();
  BrownianTree(const BrownianTree&) = delete;
  BrownianTree& operator=(const BrownianTree&) = delete;

  // The increment W(tb) - W(ta) for ta <= tb (clamped into [t0, t1] as torchsde does).
  at::Tensor operator()(double ta, double tb);

 private:
  struct Node;
  at::Tensor increment(Node* node);
  void locate(Node* node, double ta, double tb, std::vector<Node*>& out);
  void split(Node* node, double midway);
  void split_exact(Node* node, double midway);
  at::Tensor randn(uint32_t seed) const;
  void remember(Node* node, const at::Tensor& w);

  std::vector<int64_t> size_;
  uint64_t entropy_;
  std::unique_ptr<Node> root_;
  at::Tensor root_w_;
  // LRU cache of node increments (torchsde keeps 45; the values never depend on it).
  std::list<Node*> lru_;
  std::unordered_map<Node*, std::pair<at::Tensor, std::list<Node*>::iterator>> cache_;
};

}  // namespace comfy
