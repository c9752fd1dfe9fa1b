// ComfyUI's conditioning nodes of nodes.py: lists of [cond, options] combined, concatenated,
// averaged, and given areas, masks, strengths and timestep ranges. Each node copies the entries
// and their options (node_helpers.conditioning_set_values copies the dict), so inputs are never
// changed: tensors are shared, as ComfyUI shares them.
#include <spdlog/spdlog.h>

#include "core/tensor.h"
#include "graph/execution_context.h"
#include "models/conditioning.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

json float_opts(double def, double min, double max, double step) {
  return {{"default", def}, {"min", min}, {"max", max}, {"step", step}};
}
json strength_opts() { return float_opts(1.0, 0.0, 10.0, 0.01); }

NodeDef cond_node(const char* name, const char* category = "conditioning") {
  return NodeDef(name).category(category);
}

const Conditioning& cond_in(const NodeInputs& in, const char* name) { return conditioning_of(in[name]); }

NodeOutput single(Conditioning c) { return NodeOutput({conditioning_value(std::move(c))}); }

// node_helpers.conditioning_set_values: every entry with `set` applied to a copy of its options.
template <class F>
NodeOutput set_values(const Conditioning& in, F&& set) {
  Conditioning out;
  for (const CondEntry& e : in.entries) {
    CondEntry n = e;
    set(n.options);
    out.entries.push_back(std::move(n));
  }
  return single(std::move(out));
}

// ComfyUI indexes conditioning_from[0] without a check.
const CondEntry& first_of(const Conditioning& from, const char* node) {
  if (from.entries.empty()) throw ComfyError("IndexError", "list index out of range");
  if (from.entries.size() > 1)
    spdlog::warn("Warning: {} conditioning_from contains more than 1 cond, only the first one will actually be applied "
                 "to conditioning_to.",
                 node);
  return from.entries.front();
}

NodeDef ConditioningCombine() {
  return cond_node("ConditioningCombine")
      .display_name("Conditioning (Combine)")
      .input("conditioning_1", "CONDITIONING")
      .input("conditioning_2", "CONDITIONING")
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        Conditioning out = cond_in(in, "conditioning_1");
        const auto& two = cond_in(in, "conditioning_2").entries;
        out.entries.insert(out.entries.end(), two.begin(), two.end());
        return single(std::move(out));
      });
}

NodeDef ConditioningAverage() {
  return cond_node("ConditioningAverage")
      .display_name("ConditioningAverage")
      .input("conditioning_to", "CONDITIONING")
      .input("conditioning_from", "CONDITIONING")
      .input("conditioning_to_strength", "FLOAT", float_opts(1.0, 0.0, 1.0, 0.01))
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const CondEntry& from = first_of(cond_in(in, "conditioning_from"), "ConditioningAverage");
        const double s = in.get_float("conditioning_to_strength");
        return torch_guarded([&] {
          Conditioning out;
          const at::Tensor& pooled_from = from.options.pooled_output;
          for (const CondEntry& to : cond_in(in, "conditioning_to").entries) {
            const at::Tensor& t1 = to.cond;
            const at::Tensor pooled_to = to.options.pooled_output.defined() ? to.options.pooled_output : pooled_from;
            // cond_from[:, :tokens], zero-padded to the tokens of conditioning_to.
            at::Tensor t0 = from.cond.slice(1, 0, t1.size(1));
            if (t0.size(1) < t1.size(1))
              t0 = at::cat({t0, at::zeros({1, t1.size(1) - t0.size(1), t1.size(2)}, t0.options())}, 1);
            CondEntry n;
            n.cond = at::mul(t1, s) + at::mul(t0, 1.0 - s);
            n.options = to.options;
            if (pooled_from.defined() && pooled_to.defined())
              n.options.pooled_output = at::mul(pooled_to, s) + at::mul(pooled_from, 1.0 - s);
            else if (pooled_from.defined())
              n.options.pooled_output = pooled_from;
            out.entries.push_back(std::move(n));
          }
          return single(std::move(out));
        });
      });
}

NodeDef ConditioningConcat() {
  return cond_node("ConditioningConcat")
      .display_name("Conditioning (Concat)")
      .input("conditioning_to", "CONDITIONING")
      .input("conditioning_from", "CONDITIONING")
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const CondEntry& from = first_of(cond_in(in, "conditioning_from"), "ConditioningConcat");
        return torch_guarded([&] {
          Conditioning out;
          for (const CondEntry& to : cond_in(in, "conditioning_to").entries) {
            CondEntry n = to;
            n.cond = at::cat({to.cond, from.cond}, 1);
            out.entries.push_back(std::move(n));
          }
          return single(std::move(out));
        });
      });
}

NodeDef ConditioningSetArea() {
  const json px = {{"default", 64}, {"min", 64}, {"max", kMaxResolution}, {"step", 8}};
  const json pos = {{"default", 0}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}};
  return cond_node("ConditioningSetArea")
      .display_name("Conditioning (Set Area)")
      .input("conditioning", "CONDITIONING")
      .input("width", "INT", px)
      .input("height", "INT", px)
      .input("x", "INT", pos)
      .input("y", "INT", pos)
      .input("strength", "FLOAT", strength_opts())
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        // (height // 8, width // 8, y // 8, x // 8): latent units (Python floor division).
        auto floor8 = [](int64_t v) { return static_cast<double>(v / 8 - ((v % 8 != 0) && (v < 0))); };
        CondArea area;
        area.hwyx = {floor8(in.get_int("height")), floor8(in.get_int("width")), floor8(in.get_int("y")),
                     floor8(in.get_int("x"))};
        const double strength = in.get_float("strength");
        return set_values(cond_in(in, "conditioning"), [&](CondOptions& o) {
          o.area = area;
          o.strength = strength;
          o.set_area_to_bounds = false;
        });
      });
}

NodeDef ConditioningSetAreaPercentage() {
  // ComfyUI declares these with integer 0s ("min": 0, "default": 0), printed as such.
  const json size = {{"default", 1.0}, {"min", 0}, {"max", 1.0}, {"step", 0.01}};
  const json start = {{"default", 0}, {"min", 0}, {"max", 1.0}, {"step", 0.01}};
  return cond_node("ConditioningSetAreaPercentage")
      .display_name("Conditioning (Set Area with Percentage)")
      .input("conditioning", "CONDITIONING")
      .input("width", "FLOAT", size)
      .input("height", "FLOAT", size)
      .input("x", "FLOAT", start)
      .input("y", "FLOAT", start)
      .input("strength", "FLOAT", strength_opts())
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        CondArea area;
        area.percentage = true;
        area.hwyx = {in.get_float("height"), in.get_float("width"), in.get_float("y"), in.get_float("x")};
        const double strength = in.get_float("strength");
        return set_values(cond_in(in, "conditioning"), [&](CondOptions& o) {
          o.area = area;
          o.strength = strength;
          o.set_area_to_bounds = false;
        });
      });
}

NodeDef ConditioningSetAreaStrength() {
  return cond_node("ConditioningSetAreaStrength")
      .display_name("ConditioningSetAreaStrength")
      .input("conditioning", "CONDITIONING")
      .input("strength", "FLOAT", strength_opts())
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double strength = in.get_float("strength");
        return set_values(cond_in(in, "conditioning"), [&](CondOptions& o) { o.strength = strength; });
      });
}

NodeDef ConditioningSetMask() {
  return cond_node("ConditioningSetMask")
      .display_name("Conditioning (Set Mask)")
      .input("conditioning", "CONDITIONING")
      .input("mask", "MASK")
      .input("strength", "FLOAT", strength_opts())
      .combo("set_cond_area", std::vector<std::string>{"default", "mask bounds"})
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const bool to_bounds = in.get_string("set_cond_area") != "default";
        at::Tensor mask = tensor_of(in["mask"], "MASK");
        if (mask.dim() < 3) mask = mask.unsqueeze(0);
        const double strength = in.get_float("strength");
        return set_values(cond_in(in, "conditioning"), [&](CondOptions& o) {
          o.mask = mask;
          o.set_area_to_bounds = to_bounds;
          o.mask_strength = strength;
        });
      });
}

NodeDef ConditioningZeroOut() {
  return cond_node("ConditioningZeroOut", "advanced/conditioning")
      .display_name("ConditioningZeroOut")
      .input("conditioning", "CONDITIONING")
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Conditioning out;
          for (const CondEntry& e : cond_in(in, "conditioning").entries) {
            CondEntry n = e;
            n.cond = at::zeros_like(e.cond);
            if (e.options.pooled_output.defined()) n.options.pooled_output = at::zeros_like(e.options.pooled_output);
            out.entries.push_back(std::move(n));
          }
          return single(std::move(out));
        });
      });
}

NodeDef ConditioningSetTimestepRange() {
  return cond_node("ConditioningSetTimestepRange", "advanced/conditioning")
      .display_name("ConditioningSetTimestepRange")
      .input("conditioning", "CONDITIONING")
      .input("start", "FLOAT", float_opts(0.0, 0.0, 1.0, 0.001))
      .input("end", "FLOAT", float_opts(1.0, 0.0, 1.0, 0.001))
      .output("CONDITIONING")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const double start = in.get_float("start"), end = in.get_float("end");
        return set_values(cond_in(in, "conditioning"), [&](CondOptions& o) {
          o.start_percent = start;
          o.end_percent = end;
        });
      });
}

}  // namespace

// ComfyUI's /object_info order.
void register_conditioning(Registry& r) {
  r.add(ConditioningAverage());
  r.add(ConditioningCombine());
  r.add(ConditioningConcat());
  r.add(ConditioningSetArea());
  r.add(ConditioningSetAreaPercentage());
  r.add(ConditioningSetAreaStrength());
  r.add(ConditioningSetMask());
  r.add(ConditioningZeroOut());
  r.add(ConditioningSetTimestepRange());
}

}  // namespace comfy
