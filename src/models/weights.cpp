#include "models/weights.h"

#include <algorithm>

#include "core/error.h"
#include "io/safetensors.h"

namespace comfy {

struct WeightSet::Shared {
  std::unordered_map<std::string, at::Tensor> tensors;
  std::unordered_map<std::string, std::string> fp8_dtype;  // key -> "F8_E4M3"/"F8_E5M2"
  std::vector<std::shared_ptr<const void>> keep_alive;
};

std::shared_ptr<const WeightSet> WeightSet::from_file(std::shared_ptr<const SafetensorsFile> file) {
  auto shared = std::make_shared<Shared>();
  for (const std::string& key : file->keys()) {
    const TensorInfo& info = file->info(key);
    shared->tensors.emplace(key, file->tensor(key));
    if (is_fp8_dtype(info.dtype)) shared->fp8_dtype.emplace(key, info.dtype);
  }
  shared->keep_alive.push_back(file);
  auto set = std::make_shared<WeightSet>();
  set->base_ = std::move(shared);
  return set;
}

std::shared_ptr<const WeightSet> WeightSet::from_tensors(std::unordered_map<std::string, at::Tensor> tensors) {
  auto shared = std::make_shared<Shared>();
  shared->tensors = std::move(tensors);
  auto set = std::make_shared<WeightSet>();
  set->base_ = std::move(shared);
  return set;
}

bool WeightSet::has(const std::string& key) const { return base_->tensors.count(key) != 0; }

at::Tensor WeightSet::raw(const std::string& key) const {
  auto it = base_->tensors.find(key);
  if (it == base_->tensors.end()) throw ComfyError("KeyError", "weight not found: '" + key + "'");
  auto fp8 = base_->fp8_dtype.find(key);
  if (fp8 != base_->fp8_dtype.end()) return fp8_to_float32(it->second, fp8->second);
  return it->second;
}

at::Tensor WeightSet::get(const std::string& key, at::ScalarType dtype) const {
  auto patches = patches_.find(key);
  if (patches == patches_.end() || patches->second.empty()) return raw(key).to(dtype);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto hit = patched_cache_.find(key);
    if (hit != patched_cache_.end()) return hit->second.to(dtype);
  }
  at::Tensor stored = raw(key);
  at::Tensor w = stored.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  for (const WeightPatch& p : patches->second) w = p.apply(std::move(w));
  w = w.to(patch_dtype_.value_or(stored.scalar_type())).contiguous();
  std::lock_guard<std::mutex> lock(cache_mutex_);
  patched_cache_[key] = w;
  return w.to(dtype);
}

std::vector<std::string> WeightSet::keys() const {
  std::vector<std::string> out;
  out.reserve(base_->tensors.size());
  for (const auto& [k, _] : base_->tensors) out.push_back(k);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> WeightSet::keys_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& [k, _] : base_->tensors)
    if (k.compare(0, prefix.size(), prefix) == 0) out.push_back(k.substr(prefix.size()));
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<const WeightSet> WeightSet::with_patches(std::map<std::string, std::vector<WeightPatch>> patches) const {
  auto set = std::make_shared<WeightSet>();
  set->base_ = base_;
  set->patches_ = patches_;
  for (auto& [key, list] : patches) {
    auto& dst = set->patches_[key];
    for (auto& p : list) dst.push_back(std::move(p));
  }
  set->patch_dtype_ = patch_dtype_;
  return set;
}

std::shared_ptr<const WeightSet> WeightSet::with_patch_dtype(std::optional<at::ScalarType> dtype) const {
  auto set = std::make_shared<WeightSet>();
  set->base_ = base_;
  set->patches_ = patches_;
  set->patch_dtype_ = dtype;
  return set;
}

std::shared_ptr<const WeightSet> WeightSet::with_tensors(std::unordered_map<std::string, at::Tensor> tensors) const {
  auto shared = std::make_shared<Shared>(*base_);
  for (auto& [k, t] : tensors) {
    shared->fp8_dtype.erase(k);
    shared->tensors[k] = std::move(t);
  }
  auto set = std::make_shared<WeightSet>();
  set->base_ = std::move(shared);
  set->patches_ = patches_;
  set->patch_dtype_ = patch_dtype_;
  return set;
}

std::shared_ptr<const WeightSet> WeightSet::renamed_prefix(const std::string& prefix, const std::string& new_prefix) const {
  auto shared = std::make_shared<Shared>();
  shared->keep_alive = base_->keep_alive;
  auto rename = [&](const std::string& k) { return new_prefix + k.substr(prefix.size()); };
  auto under = [&](const std::string& k) { return k.compare(0, prefix.size(), prefix) == 0; };
  for (const auto& [k, t] : base_->tensors)
    if (under(k)) shared->tensors.emplace(rename(k), t);
  for (const auto& [k, d] : base_->fp8_dtype)
    if (under(k)) shared->fp8_dtype.emplace(rename(k), d);
  auto set = std::make_shared<WeightSet>();
  set->base_ = std::move(shared);
  for (const auto& [k, list] : patches_)
    if (under(k)) set->patches_[rename(k)] = list;
  set->patch_dtype_ = patch_dtype_;
  return set;
}

std::vector<int64_t> Weights::shape(const std::string& key) const {
  at::Tensor t = set->raw(prefix + key);
  return std::vector<int64_t>(t.sizes().begin(), t.sizes().end());
}

}  // namespace comfy
