// ComfyUI's comfy_extras/nodes_latent.py (latent arithmetic, concatenation, cuts, batching) and
// nodes_mask.py's LatentCompositeMasked. Registered by register_latent (latent.cpp).
#include <algorithm>

#include "core/error.h"
#include "core/tensor_utils.h"
#include "core/tensor.h"
#include "core/upscale.h"
#include "graph/execution_context.h"
#include "models/latent.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

const Latent& latent_in(const NodeInputs& in, const char* name) { return latent_of(in[name]); }
NodeOutput one(Latent l) { return NodeOutput({latent_value(std::move(l))}); }

// nodes_latent.reshape_latent_to: resized (bilinear, centre crop) when any non-batch size
// differs, then repeated/truncated to the target batch.
at::Tensor reshape_latent_to(at::IntArrayRef target, at::Tensor latent, bool repeat_batch = true) {
  if (latent.sizes().slice(1) != target.slice(1))
    latent = common_upscale(latent, target[target.size() - 1], target[target.size() - 2], "bilinear", "center");
  return repeat_batch ? repeat_to_batch_size(latent, target[0]) : latent;
}

std::vector<int64_t> range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

NodeDef v3_latent(const char* name, const char* category = "latent/advanced") {
  return NodeDef(name).schema_v3().category(category).python_module("comfy_extras.nodes_latent");
}

ComboOptions fixed(std::vector<std::string> v) {
  return [v = std::move(v)](const Services&) { return v; };
}

// LatentAdd / LatentSubtract: samples2 reshaped to samples1's size and batch first.
NodeDef binary(const char* name, bool add) {
  return v3_latent(name)
      .input("samples1", "LATENT", json::object())
      .input("samples2", "LATENT", json::object())
      .output("LATENT")
      .run([add](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "samples1");
          at::Tensor s2 = reshape_latent_to(out.samples.sizes(), latent_in(in, "samples2").samples);
          out.samples = add ? out.samples + s2 : out.samples - s2;
          return one(out);
        });
      });
}

NodeDef LatentMultiply() {
  return v3_latent("LatentMultiply")
      .input("samples", "LATENT", json::object())
      .input("multiplier", "FLOAT", {{"default", 1.0}, {"min", -10.0}, {"max", 10.0}, {"step", 0.01}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "samples");
          out.samples = out.samples * in.get_float("multiplier");
          return one(out);
        });
      });
}

NodeDef LatentInterpolate() {
  return v3_latent("LatentInterpolate")
      .input("samples1", "LATENT", json::object())
      .input("samples2", "LATENT", json::object())
      .input("ratio", "FLOAT", {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "samples1");
          at::Tensor s1 = out.samples;
          at::Tensor s2 = reshape_latent_to(s1.sizes(), latent_in(in, "samples2").samples);
          const double ratio = in.get_float("ratio");
          // Per-pixel vector norms over the channels ([B,H,W]); the divisions broadcast that
          // against [B,C,H,W] exactly as ComfyUI's do.
          at::Tensor m1 = at::linalg_vector_norm(s1, 2, {1});
          at::Tensor m2 = at::linalg_vector_norm(s2, 2, {1});
          s1 = at::nan_to_num(s1 / m1);
          s2 = at::nan_to_num(s2 / m2);
          at::Tensor t = s1 * ratio + s2 * (1.0 - ratio);
          at::Tensor mt = at::linalg_vector_norm(t, 2, {1});
          at::Tensor st = at::nan_to_num(t / mt);
          out.samples = st * (m1 * ratio + m2 * (1.0 - ratio));
          return one(out);
        });
      });
}

int64_t dim_of(const std::string& d, int64_t ndim) {
  if (d.find('x') != std::string::npos) return ndim - 1;
  if (d.find('y') != std::string::npos) return ndim - 2;
  return ndim - 3;  // "t"
}

NodeDef LatentConcat() {
  return v3_latent("LatentConcat")
      .input("samples1", "LATENT", json::object())
      .input("samples2", "LATENT", json::object())
      .v3_combo("dim", fixed({"x", "-x", "y", "-y", "t", "-t"}), json::object())
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "samples1");
          at::Tensor s1 = out.samples;
          at::Tensor s2 = repeat_to_batch_size(latent_in(in, "samples2").samples, s1.size(0));
          const std::string& d = in.get_string("dim");
          int64_t dim = d.find('x') != std::string::npos ? -1 : d.find('y') != std::string::npos ? -2 : -3;
          out.samples = d.find('-') != std::string::npos ? at::cat({s2, s1}, dim) : at::cat({s1, s2}, dim);
          return one(out);
        });
      });
}

NodeDef LatentCut() {
  return v3_latent("LatentCut")
      .input("samples", "LATENT", json::object())
      .v3_combo("dim", fixed({"x", "y", "t"}), json::object())
      .input("index", "INT", {{"default", 0}, {"min", -kMaxResolution}, {"max", kMaxResolution}, {"step", 1}})
      .input("amount", "INT", {{"default", 1}, {"min", 1}, {"max", kMaxResolution}, {"step", 1}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "samples");
          const at::Tensor& s1 = out.samples;
          int64_t dim = dim_of(in.get_string("dim"), s1.dim());
          int64_t index = in.get_int("index"), amount = in.get_int("amount");
          if (index >= 0) {
            index = std::min(index, s1.size(dim) - 1);
            amount = std::min(s1.size(dim) - index, amount);
          } else {
            index = std::max(index, -s1.size(dim));
            amount = std::min(-index, amount);
          }
          out.samples = s1.narrow(dim, index, amount);
          return one(out);
        });
      });
}

NodeDef LatentCutToBatch() {
  return v3_latent("LatentCutToBatch")
      .input("samples", "LATENT", json::object())
      .v3_combo("dim", fixed({"t", "x", "y"}), json::object())
      .input("slice_size", "INT", {{"default", 1}, {"min", 1}, {"max", kMaxResolution}, {"step", 1}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Latent& src = latent_in(in, "samples");
          int64_t dim = dim_of(in.get_string("dim"), src.samples.dim());
          if (dim < 2) return one(src);
          Latent out = src;
          at::Tensor s = src.samples.movedim(dim, 1);
          int64_t slice = in.get_int("slice_size");
          if (s.size(1) < slice) slice = s.size(1);
          else if (s.size(1) % slice != 0) s = s.narrow(1, 0, (s.size(1) / slice) * slice);
          std::vector<int64_t> shape{-1, slice};
          for (int64_t i = 2; i < s.dim(); ++i) shape.push_back(s.size(i));
          out.samples = s.reshape(shape).movedim(1, dim);
          return one(out);
        });
      });
}

NodeDef LatentBatch() {
  return v3_latent("LatentBatch", "latent/batch")
      .deprecated()
      .input("samples1", "LATENT", json::object())
      .input("samples2", "LATENT", json::object())
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Latent& l1 = latent_in(in, "samples1");
          const Latent& l2 = latent_in(in, "samples2");
          Latent out = l1;
          at::Tensor s2 = reshape_latent_to(l1.samples.sizes(), l2.samples, false);
          out.samples = at::cat({l1.samples, s2}, 0);
          std::vector<int64_t> bi = l1.batch_index ? *l1.batch_index : range(0, l1.samples.size(0));
          std::vector<int64_t> b2 = l2.batch_index ? *l2.batch_index : range(0, s2.size(0));
          bi.insert(bi.end(), b2.begin(), b2.end());
          out.batch_index = bi;
          return one(out);
        });
      });
}

NodeDef LatentBatchSeedBehavior() {
  return v3_latent("LatentBatchSeedBehavior")
      .input("samples", "LATENT", json::object())
      .v3_combo("seed_behavior", fixed({"random", "fixed"}), {{"default", "fixed"}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        Latent out = latent_in(in, "samples");
        const std::string& behavior = in.get_string("seed_behavior");
        if (behavior == "random") {
          out.batch_index.reset();
        } else if (behavior == "fixed") {
          int64_t first = out.batch_index && !out.batch_index->empty() ? out.batch_index->front() : 0;
          out.batch_index = std::vector<int64_t>(out.samples.size(0), first);
        }
        return one(out);
      });
}

NodeDef LatentCompositeMasked() {
  return NodeDef("LatentCompositeMasked")
      .schema_v3()
      .category("latent")
      .python_module("comfy_extras.nodes_mask")
      .input("destination", "LATENT", json::object())
      .input("source", "LATENT", json::object())
      .input("x", "INT", {{"default", 0}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}})
      .input("y", "INT", {{"default", 0}, {"min", 0}, {"max", kMaxResolution}, {"step", 8}})
      .input("resize_source", "BOOLEAN", {{"default", false}})
      .optional_input("mask", "MASK", json::object())
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "destination");
          const at::Tensor* mask = in.has("mask") && !in["mask"].is_none() ? &tensor_of(in["mask"], "MASK") : nullptr;
          out.samples = composite(out.samples.clone(), latent_in(in, "source").samples, in.get_int("x"),
                                  in.get_int("y"), mask, 8, in.get_bool("resize_source"));
          return one(out);
        });
      });
}

}  // namespace

void register_latent_extras(Registry& r) {
  r.add(binary("LatentAdd", true));
  r.add(binary("LatentSubtract", false));
  r.add(LatentMultiply());
  r.add(LatentInterpolate());
  r.add(LatentConcat());
  r.add(LatentCut());
  r.add(LatentCutToBatch());
  r.add(LatentBatch());
  r.add(LatentBatchSeedBehavior());
  r.add(LatentCompositeMasked());
}

}  // namespace comfy
