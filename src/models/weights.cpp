#include "models/weights.h"

#include <algorithm>

#include <sys/mman.h>
#include <unistd.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/weight_pages.h"

namespace comfy {

namespace {

// Every file a WeightSet maps, for release_all_weight_pages (expired entries are pruned).
std::mutex g_files_mutex;
std::vector<std::weak_ptr<const SafetensorsFile>> g_files;

void register_file(const std::shared_ptr<const SafetensorsFile>& file) {
  std::lock_guard<std::mutex> lock(g_files_mutex);
  g_files.erase(std::remove_if(g_files.begin(), g_files.end(), [](const auto& f) { return f.expired(); }), g_files.end());
  g_files.push_back(file);
}

uintptr_t page_size() {
  static const uintptr_t size = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// MADV_DONTNEED over the whole pages inside [begin, end). The mappings are PROT_READ + MAP_SHARED,
// so no page can hold private changes that this would drop.
int64_t drop_pages(uintptr_t begin, uintptr_t end) {
  const uintptr_t ps = page_size();
  const uintptr_t b = (begin + ps - 1) / ps * ps, e = end / ps * ps;
  if (e <= b) return 0;
  if (::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED) != 0) return 0;
  return static_cast<int64_t>(e - b);
}

}  // namespace

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
  register_file(file);
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

int64_t release_all_weight_pages() {
  std::lock_guard<std::mutex> lock(g_files_mutex);
  int64_t total = 0;
  for (const auto& weak : g_files) {
    if (auto file = weak.lock()) {
      const auto begin = reinterpret_cast<uintptr_t>(file->mapped_data());
      total += drop_pages(begin, begin + file->mapped_size());
    }
  }
  return total;
}

int64_t release_weight_pages(const Weights& w) {
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  {
    std::lock_guard<std::mutex> lock(g_files_mutex);
    for (const auto& weak : g_files)
      if (auto f = weak.lock()) files.push_back(std::move(f));
  }
  if (files.empty() || !w.set) return 0;
  // raw() decodes fp8 tensors to fresh f32: with such a file open, reading every tensor here
  // would cost more than the pages are worth.
  for (const auto& f : files)
    for (const std::string& k : f->keys())
      if (is_fp8_dtype(f->info(k).dtype)) return 0;
  auto in_file = [&](uintptr_t p) {
    for (const auto& f : files) {
      const auto b = reinterpret_cast<uintptr_t>(f->mapped_data());
      if (p >= b && p < b + f->mapped_size()) return true;
    }
    return false;
  };
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (const std::string& key : w.keys()) {
    const at::Tensor t = w.set->raw(w.prefix + key);
    if (!t.defined() || t.numel() == 0 || !t.device().is_cpu()) continue;
    const auto b = reinterpret_cast<uintptr_t>(t.data_ptr());
    if (in_file(b)) ranges.emplace_back(b, b + static_cast<uintptr_t>(t.numel() * t.element_size()));
  }
  std::sort(ranges.begin(), ranges.end());
  // Runs of tensors at most a page apart are released together; only whole pages inside a run
  // go, so the pages at its ends, which may hold another tensor's bytes, stay.
  const uintptr_t ps = page_size();
  int64_t total = 0;
  for (size_t i = 0; i < ranges.size();) {
    uintptr_t b = ranges[i].first, e = ranges[i].second;
    for (++i; i < ranges.size() && ranges[i].first <= e + ps; ++i) e = std::max(e, ranges[i].second);
    total += drop_pages(b, e);
  }
  return total;
}

}  // namespace comfy
