// Weights as data. A WeightSet is a model's state dict: zero-copy views into memory-mapped
// files, kept in their file dtype, plus patch layers (LoRA, merges) that are applied lazily when
// a layer first asks for a weight. Nothing here ever mutates a loaded tensor: a patched model is
// a new WeightSet sharing the base tensors with the old one, so switching a LoRA's strength or a
// merge ratio reloads nothing.
//
// Networks read weights through Weights, a prefix view:
//   Weights w(set, "model.diffusion_model.");
//   at::Tensor k = w("input_blocks.0.0.weight");   // patched, cast to f32 for compute
//   Weights blk = w.sub("middle_block.1.");         // a narrower view
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace comfy {

class SafetensorsFile;

// One patch of one weight, applied in f32 to the result of the layers below it (ComfyUI's
// ModelPatcher patches: the weight is computed in f32, patched, then rounded to the storage
// dtype). `apply` gets the current weight (f32, a fresh tensor it may modify or replace) and
// returns the patched weight.
struct WeightPatch {
  std::function<at::Tensor(at::Tensor weight_f32)> apply;
};

class WeightSet {
 public:
  // The tensors of a safetensors file (all keys, names as in the file). fp8 tensors are decoded
  // to f32 on use. The set keeps the file mapped.
  static std::shared_ptr<const WeightSet> from_file(std::shared_ptr<const SafetensorsFile> file);
  // A set over tensors already in memory (tests, converted pickles, generated weights).
  static std::shared_ptr<const WeightSet> from_tensors(std::unordered_map<std::string, at::Tensor> tensors);

  bool has(const std::string& key) const;
  // The stored tensor, unpatched, in its file dtype (fp8 already decoded to f32). KeyError
  // (ComfyError) naming the key when absent.
  at::Tensor raw(const std::string& key) const;
  // The weight a layer computes with: patches applied (cached per set), then cast to `dtype`.
  at::Tensor get(const std::string& key, at::ScalarType dtype = at::kFloat) const;
  // The dtype get() rounds a patched weight to before the compute cast (ComfyUI keeps CLIP in
  // fp16 and the UNet/VAE in f32 on CPU): nullopt keeps each tensor's own stored dtype.
  std::optional<at::ScalarType> patch_dtype() const { return patch_dtype_; }
  std::vector<std::string> keys() const;  // sorted
  // Keys under `prefix`, with the prefix removed, sorted.
  std::vector<std::string> keys_with_prefix(const std::string& prefix) const;

  // A new set: these tensors and patches on top of this one's (nothing is copied).
  // `patches` are appended after the existing ones for the same key.
  std::shared_ptr<const WeightSet> with_patches(std::map<std::string, std::vector<WeightPatch>> patches) const;
  std::shared_ptr<const WeightSet> with_patch_dtype(std::optional<at::ScalarType> dtype) const;
  // A new set with extra or replacing tensors (weights converted at load, e.g. key renames).
  std::shared_ptr<const WeightSet> with_tensors(std::unordered_map<std::string, at::Tensor> tensors) const;
  // A new set keeping only the keys under `prefix`, renamed to `new_prefix` + rest.
  std::shared_ptr<const WeightSet> renamed_prefix(const std::string& prefix, const std::string& new_prefix) const;

 private:
  struct Shared;  // the base tensors and what keeps them alive
  std::shared_ptr<const Shared> base_;
  std::map<std::string, std::vector<WeightPatch>> patches_;
  std::optional<at::ScalarType> patch_dtype_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, at::Tensor> patched_cache_;
};

// A prefix view of a WeightSet. Cheap to copy.
struct Weights {
  std::shared_ptr<const WeightSet> set;
  std::string prefix;

  Weights() = default;
  Weights(std::shared_ptr<const WeightSet> s, std::string p = {}) : set(std::move(s)), prefix(std::move(p)) {}
  at::Tensor operator()(const std::string& key, at::ScalarType dtype = at::kFloat) const {
    return set->get(prefix + key, dtype);
  }
  bool has(const std::string& key) const { return set->has(prefix + key); }
  // The stored shape, without patching or casting.
  std::vector<int64_t> shape(const std::string& key) const;
  Weights sub(const std::string& more) const { return Weights(set, prefix + more); }
  std::vector<std::string> keys() const { return set->keys_with_prefix(prefix); }
};

}  // namespace comfy
