#include "core/tensor_utils.h"

#include <algorithm>
#include <vector>

namespace comfy {

at::Tensor repeat_to_batch_size(const at::Tensor& t, int64_t batch) {
  const int64_t have = t.size(0);
  if (have > batch) return t.narrow(0, 0, batch);
  if (have < batch) {
    std::vector<int64_t> reps(t.dim(), 1);
    reps[0] = (batch + have - 1) / have;
    return t.repeat(reps).narrow(0, 0, batch);
  }
  return t;
}

at::Tensor composite(at::Tensor destination, at::Tensor source, int64_t x, int64_t y, const at::Tensor* mask,
                     int64_t multiplier, bool resize_source) {
  if (resize_source)
    source = at::upsample_bilinear2d(source, {destination.size(-2), destination.size(-1)}, false);
  source = repeat_to_batch_size(source, destination.size(0));
  x = std::max(-source.size(-1) * multiplier, std::min(x, destination.size(-1) * multiplier));
  y = std::max(-source.size(-2) * multiplier, std::min(y, destination.size(-2) * multiplier));
  const int64_t left = floor_div(x, multiplier), top = floor_div(y, multiplier);
  const int64_t right = left + source.size(-1), bottom = top + source.size(-2);

  at::Tensor m;
  if (!mask) {
    m = at::ones_like(source);
  } else {
    m = mask->clone().reshape({-1, 1, mask->size(-2), mask->size(-1)});
    m = at::upsample_bilinear2d(m, {source.size(-2), source.size(-1)}, false);
    m = repeat_to_batch_size(m, source.size(0));
  }
  // Only the part of the source that lands inside the destination is pasted.
  const int64_t visible_width = destination.size(-1) - left + std::min<int64_t>(0, x);
  const int64_t visible_height = destination.size(-2) - top + std::min<int64_t>(0, y);
  m = m.slice(2, 0, visible_height).slice(3, 0, visible_width);
  if (m.dim() < source.dim()) m = m.unsqueeze(1);
  at::Tensor inverse = at::ones_like(m) - m;
  at::Tensor source_portion = m * source.slice(-2, 0, visible_height).slice(-1, 0, visible_width);
  at::Tensor target = destination.slice(-2, top, bottom).slice(-1, left, right);
  at::Tensor destination_portion = inverse * target;
  target.copy_(source_portion + destination_portion);
  return destination;
}

}  // namespace comfy
