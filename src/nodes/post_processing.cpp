// ComfyUI's comfy_extras/nodes_post_processing.py: ImageBlend, ImageBlur, ImageQuantize,
// ImageSharpen and ImageScaleToTotalPixels. ImageQuantize reproduces Pillow's median-cut
// quantizer and its palette conversion (nodes/quantize.h). Not here yet: ResizeImageMaskNode
// and the Batch*Node family (they need the V3 DynamicCombo, MatchType and Autogrow inputs).
#include <cmath>

#include "core/tensor.h"
#include "core/upscale.h"
#include "graph/execution_context.h"
#include "nodes/all.h"
#include "nodes/quantize.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

NodeDef post_node(const char* name) {
  return NodeDef(name)
      .schema_v3()
      .category("image/postprocessing")
      .python_module("comfy_extras.nodes_post_processing");
}

const at::Tensor& image_in(const NodeInputs& in, const char* name) { return tensor_of(in[name], "IMAGE"); }

const std::vector<std::string> kBlendModes = {"normal", "multiply", "screen", "overlay", "soft_light", "difference"};

at::Tensor blend_mode(const at::Tensor& img1, const at::Tensor& img2, const std::string& mode) {
  if (mode == "normal") return img2;
  if (mode == "multiply") return img1 * img2;
  if (mode == "screen") return at::rsub(at::rsub(img1, 1) * at::rsub(img2, 1), 1);
  if (mode == "overlay")
    return at::where(img1 <= 0.5, 2 * img1 * img2, at::rsub(2 * at::rsub(img1, 1) * at::rsub(img2, 1), 1));
  if (mode == "soft_light") {
    at::Tensor g = at::where(img1 <= 0.25, ((16 * img1 - 12) * img1 + 4) * img1, at::sqrt(img1));
    return at::where(img2 <= 0.5, img1 - at::rsub(2 * img2, 1) * img1 * at::rsub(img1, 1), img1 + (2 * img2 - 1) * (g - img1));
  }
  if (mode == "difference") return img1 - img2;
  throw ComfyError("ValueError", "Unsupported blend mode: " + mode);
}

NodeDef ImageBlend() {
  return post_node("ImageBlend")
      .input("image1", "IMAGE", json::object())
      .input("image2", "IMAGE", json::object())
      .input("blend_factor", "FLOAT", {{"default", 0.5}, {"min", 0.0}, {"max", 1.0}, {"step", 0.01}})
      .v3_combo("blend_mode", [](const Services&) { return kBlendModes; }, json::object())
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          at::Tensor image1 = image_in(in, "image1"), image2 = image_in(in, "image2");
          // node_helpers.image_alpha_fix
          if (image1.size(-1) < image2.size(-1)) {
            image2 = image2.slice(-1, 0, image1.size(-1));
          } else if (image1.size(-1) > image2.size(-1)) {
            image1 = at::constant_pad_nd(image1, {0, 1});
            image1.select(-1, -1).fill_(1.0);
          }
          if (image1.sizes() != image2.sizes()) {
            image2 = upscale_image(image2, image1.size(2), image1.size(1), "bicubic", "center");
          }
          double factor = in.get_float("blend_factor");
          at::Tensor blended = blend_mode(image1, image2, in.get_string("blend_mode"));
          blended = image1 * (1 - factor) + blended * factor;
          return NodeOutput({tensor_value(at::clamp(blended, 0, 1))});
        });
      });
}

// nodes_post_processing.gaussian_kernel: a size x size Gaussian over [-1, 1]^2, summing to 1.
at::Tensor gaussian_kernel(int64_t size, double sigma) {
  at::Tensor axis = at::linspace(-1, 1, size);
  auto grid = at::meshgrid({axis, axis}, "ij");
  at::Tensor d = at::sqrt(grid[0] * grid[0] + grid[1] * grid[1]);
  at::Tensor g = at::exp(-(d * d) / (2.0 * sigma * sigma));
  return g / g.sum();
}

// Convolves each channel of an IMAGE with `kernel` [k,k] over a reflect-padded copy (what
// ImageBlur and ImageSharpen do).
at::Tensor filter_channels(const at::Tensor& image, const at::Tensor& kernel, int64_t radius) {
  int64_t channels = image.size(3), size = kernel.size(0);
  at::Tensor weights = kernel.repeat({channels, 1, 1}).unsqueeze(1);
  at::Tensor padded = at::reflection_pad2d(image.permute({0, 3, 1, 2}), {radius, radius, radius, radius});
  at::Tensor out = at::conv2d(padded, weights, {}, 1, size / 2, 1, channels);
  out = out.slice(2, radius, -radius).slice(3, radius, -radius);
  return out.permute({0, 2, 3, 1});
}

NodeDef ImageBlur() {
  return post_node("ImageBlur")
      .input("image", "IMAGE", json::object())
      .input("blur_radius", "INT", {{"default", 1}, {"min", 1}, {"max", 31}, {"step", 1}})
      .input("sigma", "FLOAT", {{"default", 1.0}, {"min", 0.1}, {"max", 10.0}, {"step", 0.1}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& image = image_in(in, "image");
          int64_t radius = in.get_int("blur_radius");
          if (radius == 0) return NodeOutput({in["image"]});
          at::Tensor kernel = gaussian_kernel(radius * 2 + 1, in.get_float("sigma"));
          return NodeOutput({tensor_value(filter_channels(image, kernel, radius))});
        });
      });
}

const std::vector<std::string> kDither = {"none", "floyd-steinberg", "bayer-2", "bayer-4", "bayer-8", "bayer-16"};

NodeDef ImageQuantize() {
  return post_node("ImageQuantize")
      .input("image", "IMAGE", json::object())
      .input("colors", "INT", {{"default", 256}, {"min", 1}, {"max", 256}, {"step", 1}})
      .v3_combo("dither", [](const Services&) { return kDither; }, json::object())
      .output("IMAGE")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& image = image_in(in, "image");
          int64_t colors = in.get_int("colors");
          const std::string& dither = in.get_string("dither");
          if (image.dim() != 4 || image.size(3) != 3)
            throw ComfyError("ValueError", "ImageQuantize takes RGB images (3 channels)");
          at::Tensor result = at::zeros_like(image);
          for (int64_t b = 0; b < image.size(0); ++b) {
            ctx.check_interrupt();
            // Image.fromarray((image * 255).to(torch.uint8)): truncation, wrapping above 255.
            at::Tensor rgb = (image[b] * 255).to(at::kByte).contiguous();
            quantize::Rgb8 pixels(rgb.size(1), rgb.size(0), rgb.data_ptr<uint8_t>());
            quantize::Palette palette = quantize::median_cut_palette(pixels, static_cast<int>(colors));
            quantize::Rgb8 out = dither == "none"              ? quantize::to_palette(pixels, palette, false)
                                 : dither == "floyd-steinberg" ? quantize::to_palette(pixels, palette, true)
                                                               : quantize::bayer(pixels, palette, std::stoi(dither.substr(6)));
            at::Tensor q = at::from_blob(out.data.data(), {rgb.size(0), rgb.size(1), 3}, at::kByte);
            result[b] = q.to(at::kFloat) / 255;
          }
          return NodeOutput({tensor_value(result)});
        });
      });
}

NodeDef ImageSharpen() {
  return post_node("ImageSharpen")
      .input("image", "IMAGE", json::object())
      .input("sharpen_radius", "INT", {{"default", 1}, {"min", 1}, {"max", 31}, {"step", 1}})
      .input("sigma", "FLOAT", {{"default", 1.0}, {"min", 0.1}, {"max", 10.0}, {"step", 0.01}})
      .input("alpha", "FLOAT", {{"default", 1.0}, {"min", 0.0}, {"max", 5.0}, {"step", 0.01}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const at::Tensor& image = image_in(in, "image");
          int64_t radius = in.get_int("sharpen_radius");
          if (radius == 0) return NodeOutput({in["image"]});
          int64_t size = radius * 2 + 1, center = size / 2;
          at::Tensor kernel = (gaussian_kernel(size, in.get_float("sigma")) * -(in.get_float("alpha") * 10)).to(image.dtype());
          kernel[center][center] = kernel[center][center] - kernel.sum() + 1.0;
          return NodeOutput({tensor_value(at::clamp(filter_channels(image, kernel, radius), 0, 1))});
        });
      });
}

const std::vector<std::string> kUpscaleMethods = {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"};

NodeDef ImageScaleToTotalPixels() {
  return NodeDef("ImageScaleToTotalPixels")
      .schema_v3()
      .category("image/upscaling")
      .python_module("comfy_extras.nodes_post_processing")
      .input("image", "IMAGE", json::object())
      .v3_combo("upscale_method", [](const Services&) { return kUpscaleMethods; }, json::object())
      .input("megapixels", "FLOAT", {{"default", 1.0}, {"min", 0.01}, {"max", 16.0}, {"step", 0.01}})
      .input("resolution_steps", "INT", {{"default", 1}, {"min", 1}, {"max", 256}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          at::Tensor image = image_in(in, "image");
          double total = in.get_float("megapixels") * 1024 * 1024;
          double steps = static_cast<double>(in.get_int("resolution_steps"));
          double scale_by = std::sqrt(total / static_cast<double>(image.size(2) * image.size(1)));
          // Python's round() rounds halves to even, as nearbyint does in the default mode.
          int64_t width = static_cast<int64_t>(std::nearbyint(image.size(2) * scale_by / steps) * steps);
          int64_t height = static_cast<int64_t>(std::nearbyint(image.size(1) * scale_by / steps) * steps);
          // An empty lanczos size raises ValueError inside common_upscale, as Pillow does.
          return NodeOutput({tensor_value(upscale_image(image, width, height, in.get_string("upscale_method"), "disabled"))});
        });
      });
}

}  // namespace

void register_post_processing(Registry& r) {
  r.add(ImageBlend());
  r.add(ImageBlur());
  r.add(ImageQuantize());
  r.add(ImageSharpen());
  r.add(ImageScaleToTotalPixels());
}

}  // namespace comfy
