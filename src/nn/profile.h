// A per-op time accumulator for the layers in nn/layers.cpp (conv, attention, linear, norm, the
// weight casts). Off unless COMFY_PROFILE_OPS is set in the environment (or enable(true) is
// called): then each op adds its wall time to a global counter that `comfycpp dev bench-unet`
// prints. When off, a Scope costs one relaxed load of a bool.
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace comfy::nn::profile {

enum Op : int { kConv = 0, kAttention, kLinear, kNorm, kCast, kCount };
const char* name(Op op);

extern std::atomic<bool> g_enabled;
inline bool enabled() { return g_enabled.load(std::memory_order_relaxed); }
void enable(bool on);
void reset();
void add(Op op, int64_t ns);
// Accumulated seconds and call counts per op since the last reset().
std::array<double, kCount> seconds();
std::array<int64_t, kCount> calls();

// Times its own lifetime into `op` when profiling is on. Nested scopes of different ops both
// count (a conv's weight cast is in kCast and in kConv); the bench subtracts casts.
class Scope {
 public:
  explicit Scope(Op op) : op_(op), on_(enabled()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (on_) add(op_, std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count());
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Op op_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace comfy::nn::profile

namespace comfy::nn {

// Which fast CPU paths nn/layers takes (each off = the plain libtorch op). Process-wide; the
// default is all on; COMFY_NN_FAST=conv,attention,gn_silu,... in the environment picks a subset
// ("none" for the plain paths), for A/B timing. Not meant to be toggled while a network runs.
struct Paths {
  bool conv = true;       // convolutions on oneDNN (nn/conv.h); f16 weights of linear via to_float
  bool attention = true;  // blocked attention (nn/attention.h)
  bool gn_silu = true;    // GroupNorm (+SiLU) in one pass (nn/norm.h)
  bool any() const { return conv || attention || gn_silu; }
  static Paths plain() { return Paths{false, false, false}; }
};
Paths& paths();

}  // namespace comfy::nn
