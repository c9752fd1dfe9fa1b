// ComfyUI's comfy_extras/nodes_mask.py: masks ([B,H,W] float, 0..1) made, converted, cropped,
// combined and grown, and ImageCompositeMasked (an IMAGE pasted through a mask).
// Not here yet: LatentCompositeMasked (needs the LATENT value) and MaskPreview (needs the
// preview image writer).
#include <algorithm>

#include "core/tensor.h"
#include "core/tensor_utils.h"
#include "graph/execution_context.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

json int_opts(int64_t def, int64_t min, int64_t max) {
  return {{"default", def}, {"min", min}, {"max", max}, {"step", 1}};
}

NodeDef mask_node(const char* name) {
  return NodeDef(name).schema_v3().category("mask").python_module("comfy_extras.nodes_mask");
}

const at::Tensor& mask_in(const NodeInputs& in, const char* name) { return tensor_of(in[name], "MASK"); }
const at::Tensor& image_in(const NodeInputs& in, const char* name) { return tensor_of(in[name], "IMAGE"); }

NodeDef ImageCompositeMasked() {
  return NodeDef("ImageCompositeMasked")
      .schema_v3()
      .category("image")
      .python_module("comfy_extras.nodes_mask")
      .input("destination", "IMAGE", json::object())
      .input("source", "IMAGE", json::object())
      .input("x", "INT", int_opts(0, 0, kMaxResolution))
      .input("y", "INT", int_opts(0, 0, kMaxResolution))
      .input("resize_source", "BOOLEAN", {{"default", false}})
      .optional_input("mask", "MASK", json::object())
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          at::Tensor destination = image_in(in, "destination"), source = image_in(in, "source");
          // node_helpers.image_alpha_fix: the source loses channels the destination lacks; a
          // destination with more channels gains one more, set to 1 (sic: RGBA becomes 5 channels).
          if (destination.size(-1) < source.size(-1)) {
            source = source.slice(-1, 0, destination.size(-1));
          } else if (destination.size(-1) > source.size(-1)) {
            destination = at::constant_pad_nd(destination, {0, 1});
            destination.select(-1, -1).fill_(1.0);
          }
          destination = destination.clone().movedim(-1, 1);
          std::optional<at::Tensor> mask;
          if (in.has("mask") && !in["mask"].is_none()) mask = mask_in(in, "mask");
          at::Tensor out = composite(destination, source.movedim(-1, 1), in.get_int("x"), in.get_int("y"),
                                     mask ? &*mask : nullptr, 1, in.get_bool("resize_source"));
          return NodeOutput({tensor_value(out.movedim(1, -1))});
        });
      });
}

NodeDef MaskToImage() {
  return mask_node("MaskToImage")
      .display_name("Convert Mask to Image")
      .input("mask", "MASK", json::object())
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& mask = mask_in(in, "mask");
          at::Tensor out = mask.reshape({-1, 1, mask.size(-2), mask.size(-1)}).movedim(1, -1).expand({-1, -1, -1, 3});
          return NodeOutput({tensor_value(out)});
        });
      });
}

const std::vector<std::string> kChannels = {"red", "green", "blue", "alpha"};

NodeDef ImageToMask() {
  return mask_node("ImageToMask")
      .display_name("Convert Image to Mask")
      .input("image", "IMAGE", json::object())
      .v3_combo("channel", [](const Services&) { return kChannels; }, json::object())
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& image = image_in(in, "image");
          const std::string& channel = in.get_string("channel");
          int64_t index = std::find(kChannels.begin(), kChannels.end(), channel) - kChannels.begin();
          if (index == static_cast<int64_t>(kChannels.size()))
            throw ComfyError("ValueError", "'" + channel + "' is not in list");
          if (image.dim() != 4 || index >= image.size(3))
            throw ComfyError("IndexError", "index " + std::to_string(index) + " is out of bounds for dimension 3 with size " +
                                               std::to_string(image.dim() == 4 ? image.size(3) : 0));
          return NodeOutput({tensor_value(image.select(3, index))});
        });
      });
}

NodeDef ImageColorToMask() {
  return mask_node("ImageColorToMask")
      .input("image", "IMAGE", json::object())
      .input("color", "INT", {{"default", 0}, {"min", 0}, {"max", 0xFFFFFF}, {"step", 1}, {"display", "number"}})
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          at::Tensor temp = (at::clamp(image_in(in, "image"), 0, 1.0) * 255.0).round().to(at::kInt);
          temp = at::bitwise_left_shift(temp.select(3, 0), 16) + at::bitwise_left_shift(temp.select(3, 1), 8) +
                 temp.select(3, 2);
          return NodeOutput({tensor_value(at::eq(temp, in.get_int("color")).to(at::kFloat))});
        });
      });
}

NodeDef SolidMask() {
  return mask_node("SolidMask")
      .input("value", "FLOAT", {{"default", 1.0}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})
      .input("width", "INT", int_opts(512, 1, kMaxResolution))
      .input("height", "INT", int_opts(512, 1, kMaxResolution))
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          at::Tensor out = at::full({1, in.get_int("height"), in.get_int("width")}, in.get_float("value"),
                                    at::TensorOptions().dtype(at::kFloat));
          return NodeOutput({tensor_value(out)});
        });
      });
}

NodeDef InvertMask() {
  return mask_node("InvertMask")
      .input("mask", "MASK", json::object())
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] { return NodeOutput({tensor_value(at::rsub(mask_in(in, "mask"), 1.0))}); });
      });
}

NodeDef CropMask() {
  return mask_node("CropMask")
      .input("mask", "MASK", json::object())
      .input("x", "INT", int_opts(0, 0, kMaxResolution))
      .input("y", "INT", int_opts(0, 0, kMaxResolution))
      .input("width", "INT", int_opts(512, 1, kMaxResolution))
      .input("height", "INT", int_opts(512, 1, kMaxResolution))
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& mask = mask_in(in, "mask");
          int64_t x = in.get_int("x"), y = in.get_int("y");
          at::Tensor out = mask.reshape({-1, mask.size(-2), mask.size(-1)})
                               .slice(1, y, y + in.get_int("height"))
                               .slice(2, x, x + in.get_int("width"));
          return NodeOutput({tensor_value(out)});
        });
      });
}

const std::vector<std::string> kCompositeOps = {"multiply", "add", "subtract", "and", "or", "xor"};

NodeDef MaskComposite() {
  return mask_node("MaskComposite")
      .input("destination", "MASK", json::object())
      .input("source", "MASK", json::object())
      .input("x", "INT", int_opts(0, 0, kMaxResolution))
      .input("y", "INT", int_opts(0, 0, kMaxResolution))
      .v3_combo("operation", [](const Services&) { return kCompositeOps; }, json::object())
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& dst = mask_in(in, "destination");
          const at::Tensor& src = mask_in(in, "source");
          at::Tensor output = dst.reshape({-1, dst.size(-2), dst.size(-1)}).clone();
          at::Tensor source = src.reshape({-1, src.size(-2), src.size(-1)});
          int64_t left = in.get_int("x"), top = in.get_int("y");
          int64_t right = std::min(left + source.size(-1), output.size(-1));
          int64_t bottom = std::min(top + source.size(-2), output.size(-2));
          at::Tensor source_portion = source.slice(1, 0, bottom - top).slice(2, 0, right - left);
          at::Tensor target = output.slice(1, top, bottom).slice(2, left, right);
          at::Tensor destination_portion = target;
          const std::string& op = in.get_string("operation");
          auto as_bool = [](const at::Tensor& t) { return t.round().to(at::kBool); };
          at::Tensor result;
          if (op == "multiply") result = destination_portion * source_portion;
          else if (op == "add") result = destination_portion + source_portion;
          else if (op == "subtract") result = destination_portion - source_portion;
          else if (op == "and") result = at::bitwise_and(as_bool(destination_portion), as_bool(source_portion)).to(at::kFloat);
          else if (op == "or") result = at::bitwise_or(as_bool(destination_portion), as_bool(source_portion)).to(at::kFloat);
          else if (op == "xor") result = at::bitwise_xor(as_bool(destination_portion), as_bool(source_portion)).to(at::kFloat);
          if (result.defined()) target.copy_(result);
          return NodeOutput({tensor_value(at::clamp(output, 0.0, 1.0))});
        });
      });
}

NodeDef FeatherMask() {
  return mask_node("FeatherMask")
      .input("mask", "MASK", json::object())
      .input("left", "INT", int_opts(0, 0, kMaxResolution))
      .input("top", "INT", int_opts(0, 0, kMaxResolution))
      .input("right", "INT", int_opts(0, 0, kMaxResolution))
      .input("bottom", "INT", int_opts(0, 0, kMaxResolution))
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& mask = mask_in(in, "mask");
          at::Tensor output = mask.reshape({-1, mask.size(-2), mask.size(-1)}).clone();
          int64_t width = output.size(-1), height = output.size(-2);
          int64_t left = std::min(in.get_int("left"), width), right = std::min(in.get_int("right"), width);
          int64_t top = std::min(in.get_int("top"), height), bottom = std::min(in.get_int("bottom"), height);
          // Python's output[:, :, -x]: for x = 0 that is column 0, not the last one (ComfyUI's
          // right and bottom feathers start at the wrong edge; we keep that).
          auto from_end = [](int64_t i, int64_t size) { return i == 0 ? 0 : size - i; };
          for (int64_t i = 0; i < left; ++i) output.select(2, i).mul_((i + 1.0) / left);
          for (int64_t i = 0; i < right; ++i) output.select(2, from_end(i, width)).mul_((i + 1.0) / right);
          for (int64_t i = 0; i < top; ++i) output.select(1, i).mul_((i + 1.0) / top);
          for (int64_t i = 0; i < bottom; ++i) output.select(1, from_end(i, height)).mul_((i + 1.0) / bottom);
          return NodeOutput({tensor_value(output)});
        });
      });
}

// One step of scipy.ndimage.grey_dilation (or erosion) with a 3x3 footprint: a cross when the
// corners are tapered, else the full square. scipy's border mode (reflect) only ever repeats a
// pixel already under the footprint, so max pooling (which ignores the padding) is the same.
at::Tensor grow_step(const at::Tensor& m, bool dilate, bool tapered) {
  at::Tensor x = dilate ? m : -m;
  at::Tensor out;
  if (tapered)
    out = at::maximum(at::max_pool2d(x, {1, 3}, {1, 1}, {0, 1}), at::max_pool2d(x, {3, 1}, {1, 1}, {1, 0}));
  else
    out = at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1});
  return dilate ? out : -out;
}

NodeDef GrowMask() {
  return mask_node("GrowMask")
      .display_name("Grow Mask")
      .input("mask", "MASK", json::object())
      .input("expand", "INT", int_opts(0, -kMaxResolution, kMaxResolution))
      .input("tapered_corners", "BOOLEAN", {{"default", true}})
      .output("MASK")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& mask = mask_in(in, "mask");
          int64_t expand = in.get_int("expand");
          bool tapered = in.get_bool("tapered_corners");
          // [B,1,H,W]: each mask is a one-channel image to the pooling.
          at::Tensor out = mask.reshape({-1, 1, mask.size(-2), mask.size(-1)}).to(at::kFloat);
          for (int64_t i = 0; i < std::abs(expand); ++i) {
            ctx.check_interrupt();
            out = grow_step(out, expand > 0, tapered);
          }
          return NodeOutput({tensor_value(out.squeeze(1).to(mask.scalar_type()).contiguous())});
        });
      });
}

NodeDef ThresholdMask() {
  return mask_node("ThresholdMask")
      .input("mask", "MASK", json::object())
      .input("value", "FLOAT", {{"default", 0.5}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded(
            [&] { return NodeOutput({tensor_value(at::gt(mask_in(in, "mask"), in.get_float("value")).to(at::kFloat))}); });
      });
}

}  // namespace

void register_mask(Registry& r) {
  r.add(ImageCompositeMasked());
  r.add(MaskToImage());
  r.add(ImageToMask());
  r.add(ImageColorToMask());
  r.add(SolidMask());
  r.add(InvertMask());
  r.add(CropMask());
  r.add(MaskComposite());
  r.add(FeatherMask());
  r.add(GrowMask());
  r.add(ThresholdMask());
}

}  // namespace comfy
