// torchsde's BrownianTree / BrownianInterval (halfway tree, tol 1e-6, no Levy area) and numpy's
// SeedSequence, written from their published algorithms.
#include "sampling/brownian_tree.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "sampling/k_common.h"

namespace comfy {
namespace {

constexpr uint32_t kInitA = 0x43b0d7e5, kMultA = 0x931e8875, kInitB = 0x8b51f9dd, kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd, kMixMultR = 0x4973f715;
constexpr int kXShift = 16;

uint32_t hashmix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// A non-negative Python int as little-endian uint32 words ([0] for 0).
void append_words(std::vector<uint32_t>& out, uint64_t n) {
  if (n == 0) {
    out.push_back(0);
    return;
  }
  while (n > 0) {
    out.push_back(static_cast<uint32_t>(n & 0xffffffffu));
    n >>= 32;
  }
}

// Python's round(x, 6): the correctly rounded 6-decimal value (glibc's printf rounds the exact
// binary value half-to-even, as CPython's dtoa does).
double round6(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", x);
  return std::strtod(buf, nullptr);
}

}  // namespace

SeedSequence::SeedSequence(uint64_t entropy, const std::vector<uint64_t>& spawn_key, size_t pool_size) {
  std::vector<uint32_t> run_entropy, spawn_entropy;
  append_words(run_entropy, entropy);
  for (uint64_t k : spawn_key) append_words(spawn_entropy, k);
  // numpy >= 1.19 pads the run entropy to the pool size when there is a spawn key.
  if (!spawn_entropy.empty() && run_entropy.size() < pool_size) run_entropy.resize(pool_size, 0);
  std::vector<uint32_t> entropy_array = run_entropy;
  entropy_array.insert(entropy_array.end(), spawn_entropy.begin(), spawn_entropy.end());

  pool_.assign(pool_size, 0);
  uint32_t hash_const = kInitA;
  for (size_t i = 0; i < pool_size; ++i)
    pool_[i] = hashmix(i < entropy_array.size() ? entropy_array[i] : 0, hash_const);
  for (size_t src = 0; src < pool_size; ++src)
    for (size_t dst = 0; dst < pool_size; ++dst)
      if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash_const));
  for (size_t src = pool_size; src < entropy_array.size(); ++src)
    for (size_t dst = 0; dst < pool_size; ++dst) pool_[dst] = mix(pool_[dst], hashmix(entropy_array[src], hash_const));
}

std::vector<uint32_t> SeedSequence::generate_state(size_t n_words) const {
  std::vector<uint32_t> state(n_words);
  uint32_t hash_const = kInitB;
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t v = pool_[i % pool_.size()];
    v ^= hash_const;
    hash_const *= kMultB;
    v *= hash_const;
    v ^= v >> kXShift;
    state[i] = v;
  }
  return state;
}

struct BrownianTree::Node {
  double start = 0, end = 0;
  Node* parent = nullptr;
  bool is_left = false;
  bool split = false;
  double midway = 0;
  uint64_t spawn_key = 0, depth = 0;
  uint32_t w_seed = 0;
  std::unique_ptr<Node> left, right;
};

namespace {
constexpr size_t kPoolSize = 24;
constexpr size_t kCacheSize = 45;
}  // namespace

BrownianTree::BrownianTree(double t0, double t1, std::vector<int64_t> size, uint64_t entropy)
    : size_(std::move(size)), entropy_(entropy) {
  if (t0 > t1) throw ComfyError("ValueError", "Brownian tree: t0 should be less than t1");
  root_ = std::make_unique<Node>();
  root_->start = round6(t0);
  root_->end = round6(t1);
  std::vector<uint32_t> seeds = SeedSequence(entropy, {}, kPoolSize).generate_state(3);
  root_w_ = randn(seeds[0]) * std::sqrt(t1 - t0);
}

BrownianTree::~BrownianTree() = default;

at::Tensor BrownianTree::randn(uint32_t seed) const {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  return at::randn(size_, gen, at::TensorOptions().dtype(at::kFloat));
}

void BrownianTree::split_exact(Node* node, double midway) {
  node->midway = round6(midway);
  node->split = true;
  if (node->parent) {
    node->spawn_key = 2 * node->parent->spawn_key + (node->is_left ? 0 : 1);
    node->depth = node->parent->depth + 1;
  }
  if (node->depth >= 63) throw ComfyError("RuntimeError", "Brownian tree: too deep");
  std::vector<uint32_t> seeds = SeedSequence(entropy_, {node->spawn_key, node->depth}, kPoolSize).generate_state(4);
  node->w_seed = seeds[0];
  node->left = std::make_unique<Node>();
  node->left->start = round6(node->start);
  node->left->end = round6(midway);
  node->left->parent = node;
  node->left->is_left = true;
  node->right = std::make_unique<Node>();
  node->right->start = round6(midway);
  node->right->end = round6(node->end);
  node->right->parent = node;
  node->right->is_left = false;
}

void BrownianTree::split(Node* node, double midway) {
  // halfway_tree: always split at the middle, then split the child holding `midway` again.
  while (true) {
    split_exact(node, 0.5 * (node->end + node->start));
    if (midway > node->midway) node = node->right.get();
    else if (midway < node->midway) node = node->left.get();
    else return;
  }
}

void BrownianTree::locate(Node* node, double ta, double tb, std::vector<Node*>& out) {
  while (true) {
    if (ta < node->start || tb > node->end) {
      node = node->parent;
      continue;
    }
    if (ta == node->start && tb == node->end) {
      out.push_back(node);
      return;
    }
    if (!node->split) {
      if (ta == node->start) {
        split(node, tb);
        node = node->left.get();
        continue;
      }
      split(node, ta);
      node = node->right.get();
      continue;
    }
    if (tb <= node->midway) {
      node = node->left.get();
      continue;
    }
    if (ta >= node->midway) {
      node = node->right.get();
      continue;
    }
    locate(node->left.get(), ta, node->midway, out);
    ta = node->midway;
    node = node->right.get();
  }
}

void BrownianTree::remember(Node* node, const at::Tensor& w) {
  auto it = cache_.find(node);
  if (it != cache_.end()) {
    lru_.erase(it->second.second);
    cache_.erase(it);
  } else if (cache_.size() >= kCacheSize) {
    cache_.erase(lru_.front());
    lru_.pop_front();
  }
  lru_.push_back(node);
  cache_[node] = {w, std::prev(lru_.end())};
}

at::Tensor BrownianTree::increment(Node* node) {
  if (node == root_.get()) return root_w_;
  auto it = cache_.find(node);
  if (it != cache_.end()) return it->second.first;
  // The parent's increment split by a Brownian bridge at its midway point.
  std::vector<Node*> chain;
  Node* n = node;
  at::Tensor w;
  while (true) {
    if (n == root_.get()) {
      w = root_w_;
      break;
    }
    auto c = cache_.find(n);
    if (c != cache_.end()) {
      w = c->second.first;
      break;
    }
    chain.push_back(n);
    n = n->parent;
  }
  for (auto ci = chain.rbegin(); ci != chain.rend(); ++ci) {
    Node* child = *ci;
    Node* parent = child->parent;
    double h_reciprocal = 1 / (parent->end - parent->start);
    double left_diff = parent->midway - parent->start;
    double right_diff = parent->end - parent->midway;
    at::Tensor mean = w * left_diff * h_reciprocal;
    double var = left_diff * right_diff * h_reciprocal;
    at::Tensor noise = randn(parent->w_seed);
    at::Tensor left_w = mean + noise * std::sqrt(var);
    w = child->is_left ? left_w : w - left_w;
    remember(child, w);
  }
  return w;
}

at::Tensor BrownianTree::operator()(double ta, double tb) {
  Node* root = root_.get();
  if (ta < root->start) ta = root->start;
  if (tb < root->start) tb = root->start;
  if (ta > root->end) ta = root->end;
  if (tb > root->end) tb = root->end;
  if (ta > tb) throw ComfyError("RuntimeError", "Brownian tree: query times must respect ta <= tb");
  if (ta == tb) return at::zeros(size_, at::kFloat);
  std::vector<Node*> intervals;
  locate(root, round6(ta), round6(tb), intervals);
  at::Tensor w = increment(intervals[0]);
  for (size_t k = 1; k < intervals.size(); ++k) w = w + increment(intervals[k]);
  return w;
}

namespace ksampling {

// BrownianTreeNoiseSampler: sign-corrected tree increments over [sigma_next, sigma], scaled to
// unit variance. Trees live on the CPU; the _gpu variants give the same numbers there.
NoiseSampler brownian_tree_noise_sampler(const at::Tensor& x, const at::Tensor& sigma_min,
                                         const at::Tensor& sigma_max, std::optional<uint64_t> seed) {
  if (!seed) throw ComfyError("ValueError", "Brownian tree noise needs a seed");
  double a = sigma_min.item<float>(), b = sigma_max.item<float>();
  double sign = 1;
  if (!(a < b)) {
    std::swap(a, b);
    sign = -1;
  }
  std::vector<int64_t> size(x.sizes().begin(), x.sizes().end());
  auto tree = std::make_shared<BrownianTree>(a, b, size, *seed);
  auto dtype = x.scalar_type();
  return [tree, sign, dtype](const at::Tensor& sigma, const at::Tensor& sigma_next) {
    at::Tensor t0 = sigma.to(at::kFloat), t1 = sigma_next.to(at::kFloat);
    double lo = t0.item<float>(), hi = t1.item<float>();
    double s = 1;
    if (!(lo < hi)) {
      std::swap(lo, hi);
      s = -1;
    }
    at::Tensor w = (*tree)(lo, hi).to(dtype) * (sign * s);
    return w / (t1 - t0).abs().sqrt();
  };
}

}  // namespace ksampling
}  // namespace comfy
