#include "nn/profile.h"

#include <cstdlib>
#include <string>

namespace comfy::nn::profile {

namespace {
std::array<std::atomic<int64_t>, kCount> g_ns{};
std::array<std::atomic<int64_t>, kCount> g_calls{};
}  // namespace

std::atomic<bool> g_enabled{std::getenv("COMFY_PROFILE_OPS") != nullptr};

const char* name(Op op) {
  switch (op) {
    case kConv: return "conv2d";
    case kAttention: return "attention";
    case kLinear: return "linear";
    case kNorm: return "norm";
    case kCast: return "weight cast";
    default: return "?";
  }
}

void enable(bool on) { g_enabled.store(on); }

void reset() {
  for (auto& v : g_ns) v.store(0);
  for (auto& v : g_calls) v.store(0);
}

void add(Op op, int64_t ns) {
  g_ns[op].fetch_add(ns, std::memory_order_relaxed);
  g_calls[op].fetch_add(1, std::memory_order_relaxed);
}

std::array<double, kCount> seconds() {
  std::array<double, kCount> out{};
  for (int i = 0; i < kCount; ++i) out[i] = g_ns[i].load() * 1e-9;
  return out;
}

std::array<int64_t, kCount> calls() {
  std::array<int64_t, kCount> out{};
  for (int i = 0; i < kCount; ++i) out[i] = g_calls[i].load();
  return out;
}

}  // namespace comfy::nn::profile

namespace comfy::nn {

namespace {
Paths paths_from_env() {
  const char* env = std::getenv("COMFY_NN_FAST");
  if (!env) return Paths{};
  std::string s = std::string(",") + env + ",";
  auto has = [&](const char* name) { return s.find(std::string(",") + name + ",") != std::string::npos; };
  if (has("all")) return Paths{};
  Paths p = Paths::plain();
  p.conv = has("conv");
  p.attention = has("attention");
  p.gn_silu = has("gn_silu");
  return p;
}
}  // namespace

Paths& paths() {
  static Paths p = paths_from_env();
  return p;
}

}  // namespace comfy::nn
