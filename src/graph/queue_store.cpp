#include "graph/queue_store.h"

#include <cmath>
#include <cstdint>

namespace comfy {

namespace {

// ComfyUI's queue numbers are Python ints unless a client sent a float ("number": 1.5 or a
// fractional front position), so an integral number prints as an integer ("3", not "3.0").
json number_json(double number) {
  // 2^63 bounds what int64 holds; anything integral and inside prints as an integer.
  constexpr double kInt64Bound = 9223372036854775808.0;
  if (std::isfinite(number) && std::trunc(number) == number && number > -kInt64Bound &&
      number < kInt64Bound) {
    return json(static_cast<std::int64_t>(number));
  }
  return json(number);
}

}  // namespace

json QueueItem::to_json() const {
  json outs = json::array();
  for (const std::string& o : outputs) outs.push_back(o);
  json arr = json::array();
  arr.push_back(number_json(number));
  arr.push_back(prompt_id);
  arr.push_back(prompt);
  arr.push_back(extra_data);
  arr.push_back(std::move(outs));
  // `sensitive` (ComfyUI's sixth element) is never shown.
  return arr;
}

}  // namespace comfy
