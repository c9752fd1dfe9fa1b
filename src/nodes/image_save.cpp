#include "nodes/image_save.h"

#include <cmath>

#include "core/error.h"
#include "core/tensor.h"

namespace comfy {

std::vector<uint8_t> image_to_u8(const at::Tensor& hwc) {
  at::Tensor u8 = (hwc.to(at::kCPU, at::kFloat) * 255.0f).clamp(0, 255).to(at::kByte).contiguous();
  return std::vector<uint8_t>(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
}

at::Tensor image_batch_for_saving(const NodeInputs& in, const char* name) {
  at::Tensor images = tensor_of(in[name], "IMAGE");
  if (images.dim() != 4 || images.size(0) < 1 || images.size(3) < 1 || images.size(3) > 4 || images.size(1) < 1 ||
      images.size(2) < 1)
    throw ComfyError("ValueError", std::string("Cannot save an image of shape ") + Tensor(images).repr() +
                                       ": expected [batch, height, width, 1..4 channels]");
  return images;
}

std::string python_json_dumps(const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      std::string s = "{";
      bool first = true;
      for (auto& [k, x] : v.items()) {
        if (!first) s += ", ";
        first = false;
        s += json(k).dump(-1, ' ', true) + ": " + python_json_dumps(x);
      }
      return s + "}";
    }
    case json::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + python_json_dumps(v[i]);
      return s + "]";
    }
    case json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      return v.dump();
    }
    default:
      return v.dump(-1, ' ', true);
  }
}

std::vector<std::pair<std::string, std::string>> save_metadata(const NodeInputs& in, bool disable_metadata) {
  std::vector<std::pair<std::string, std::string>> out;
  if (disable_metadata) return out;
  const Value& prompt = in["prompt"];
  if (!prompt.is_none() && !prompt.is_object()) out.emplace_back("prompt", python_json_dumps(prompt.data()));
  const Value& extra = in["extra_pnginfo"];
  if (!extra.is_object() && extra.data().is_object())
    for (auto& [k, x] : extra.data().items()) out.emplace_back(k, python_json_dumps(x));
  return out;
}

json saved_result(const std::string& filename, const std::string& subfolder, const std::string& type) {
  return json{{"filename", filename}, {"subfolder", subfolder}, {"type", type}};
}

}  // namespace comfy
