// ComfyUI's comfy_extras/nodes_images.py: crop, batch, flip/rotate and stitch transforms, and the
// animated savers (SaveAnimatedWEBP, SaveAnimatedPNG).
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "core/error.h"
#include "core/tensor.h"
#include "core/upscale.h"
#include "graph/execution_context.h"
#include "io/image.h"
#include "io/png.h"
#include "io/webp.h"
#include "models/folder_paths.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/image_save.h"

namespace comfy {
namespace {

NodeDef images_node(const char* name, const char* category) {
  NodeDef def(name);
  def.schema_v3().category(category).python_module("comfy_extras.nodes_images");
  return def;
}

const at::Tensor& image_in(const NodeInputs& in, const char* name = "image") { return tensor_of(in[name], "IMAGE"); }

NodeDef ImageCrop() {
  auto coord = [](int64_t def, int64_t min) {
    return json{{"default", def}, {"min", min}, {"max", kMaxResolution}, {"step", 1}};
  };
  return images_node("ImageCrop", "image/transform")
      .display_name("Image Crop")
      .input("image", "IMAGE", json::object())
      .input("width", "INT", coord(512, 1))
      .input("height", "INT", coord(512, 1))
      .input("x", "INT", coord(0, 0))
      .input("y", "INT", coord(0, 0))
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        const at::Tensor& image = image_in(in);
        int64_t x = std::min(in.get_int("x"), image.size(2) - 1), y = std::min(in.get_int("y"), image.size(1) - 1);
        x = std::max<int64_t>(x, 0);
        y = std::max<int64_t>(y, 0);
        int64_t to_x = std::min(image.size(2), x + in.get_int("width"));
        int64_t to_y = std::min(image.size(1), y + in.get_int("height"));
        return NodeOutput({tensor_value(image.slice(1, y, to_y).slice(2, x, to_x))});
      });
}

NodeDef RepeatImageBatch() {
  return images_node("RepeatImageBatch", "image/batch")
      .input("image", "IMAGE", json::object())
      .input("amount", "INT", {{"default", 1}, {"min", 1}, {"max", 4096}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        const at::Tensor& image = image_in(in);
        int64_t amount = in.get_int("amount");
        if (amount < 1 || image.numel() * amount > (int64_t(1) << 31))
          throw ComfyError("ValueError", "RepeatImageBatch: " + std::to_string(amount) + " copies are too many");
        return NodeOutput({tensor_value(image.repeat({amount, 1, 1, 1}))});
      });
}

NodeDef ImageFromBatch() {
  return images_node("ImageFromBatch", "image/batch")
      .input("image", "IMAGE", json::object())
      .input("batch_index", "INT", {{"default", 0}, {"min", 0}, {"max", 4095}})
      .input("length", "INT", {{"default", 1}, {"min", 1}, {"max", 4096}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        const at::Tensor& image = image_in(in);
        int64_t index = std::min(image.size(0) - 1, in.get_int("batch_index"));
        int64_t length = std::min(image.size(0) - index, in.get_int("length"));
        return NodeOutput({tensor_value(image.slice(0, index, index + length).clone())});
      });
}

// ---- animated savers ----

struct Frames {
  at::Tensor images;
  std::vector<std::vector<uint8_t>> pixels;
  std::vector<const uint8_t*> pointers;
  int width = 0, height = 0, channels = 0;
};

Frames frames_of(const NodeInputs& in) {
  Frames f;
  f.images = image_batch_for_saving(in, "images");
  f.height = static_cast<int>(f.images.size(1));
  f.width = static_cast<int>(f.images.size(2));
  f.channels = static_cast<int>(f.images.size(3));
  for (int64_t b = 0; b < f.images.size(0); ++b) f.pixels.push_back(image_to_u8(f.images[b]));
  for (auto& p : f.pixels) f.pointers.push_back(p.data());
  return f;
}

std::string numbered(const std::string& filename, int counter, const char* ext) {
  char number[16];
  std::snprintf(number, sizeof number, "%05d", counter);
  return filename + "_" + number + "_" + ext;
}

json animated_ui(const FolderPaths::SavePath& p, const std::string& file, int64_t frames) {
  json ui{{"images", json::array({saved_result(file, p.subfolder, "output")})}};
  if (frames > 1) ui["animated"] = json::array({true});
  return ui;
}

// V3 savers skip empty (falsy) prompt/extra_pnginfo values, unlike SaveImage.
std::vector<std::pair<std::string, std::string>> v3_metadata(const NodeInputs& in, bool disable) {
  NodeInputs filtered = in;
  for (const char* key : {"prompt", "extra_pnginfo"}) {
    const Value& v = in[key];
    if (!v.is_object() && v.data().is_object() && v.data().empty()) filtered.values.erase(key);
  }
  return save_metadata(filtered, disable);
}

NodeDef SaveAnimatedWEBP() {
  return images_node("SaveAnimatedWEBP", "image/animation")
      .input("images", "IMAGE", json::object())
      .input("filename_prefix", "STRING", {{"default", "ComfyUI"}, {"multiline", false}})
      .input("fps", "FLOAT", {{"default", 6.0}, {"min", 0.01}, {"max", 1000.0}, {"step", 0.01}})
      .input("lossless", "BOOLEAN", {{"default", true}})
      .input("quality", "INT", {{"default", 80}, {"min", 0}, {"max", 100}})
      .v3_combo("method", [](const Services&) { return std::vector<std::string>{"default", "fastest", "slowest"}; },
                json::object())
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO")
      .output_node()
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        const Services& s = ctx.services();
        Frames f = frames_of(in);
        if (f.channels != 3 && f.channels != 4)
          throw ComfyError("ValueError", "SaveAnimatedWEBP: images must have 3 or 4 channels");
        auto p = folders(s).get_save_image_path(in.get_string("filename_prefix"), folders(s).output_directory(),
                                                f.width, f.height);
        io::WebpAnimOptions o;
        o.duration_ms = static_cast<int>(1000.0 / in.get_float("fps"));
        o.lossless = in.get_bool("lossless");
        o.quality = static_cast<int>(in.get_int("quality"));
        const std::string& method = in.get_string("method");
        o.method = method == "fastest" ? 0 : method == "slowest" ? 6 : 4;
        // prompt in EXIF Model (0x0110), extra_pnginfo keys from Make (0x010F) downwards.
        std::vector<std::pair<uint16_t, std::string>> exif;
        if (!s.options.disable_metadata) {
          if (!in["prompt"].is_none()) exif.emplace_back(0x0110, "prompt:" + python_json_dumps(in["prompt"].data()));
          uint16_t tag = 0x010F;
          const Value& extra = in["extra_pnginfo"];
          if (!extra.is_object() && extra.data().is_object())
            for (auto& [key, value] : extra.data().items()) exif.emplace_back(tag--, key + ":" + python_json_dumps(value));
        }
        if (!exif.empty()) o.exif = io::exif_ascii_block(exif);
        std::string file = numbered(p.filename, p.counter, ".webp");
        io::write_file_atomic(p.full_output_folder / file,
                              io::encode_animated_webp(f.pointers, f.width, f.height, f.channels, o));
        return NodeOutput({}, animated_ui(p, file, f.images.size(0)));
      });
}

NodeDef SaveAnimatedPNG() {
  return images_node("SaveAnimatedPNG", "image/animation")
      .input("images", "IMAGE", json::object())
      .input("filename_prefix", "STRING", {{"default", "ComfyUI"}, {"multiline", false}})
      .input("fps", "FLOAT", {{"default", 6.0}, {"min", 0.01}, {"max", 1000.0}, {"step", 0.01}})
      .input("compress_level", "INT", {{"default", 4}, {"min", 0}, {"max", 9}})
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO")
      .output_node()
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        const Services& s = ctx.services();
        Frames f = frames_of(in);
        auto p = folders(s).get_save_image_path(in.get_string("filename_prefix"), folders(s).output_directory(),
                                                f.width, f.height);
        std::vector<io::RawChunk> chunks;
        for (auto& [key, text] : v3_metadata(in, s.options.disable_metadata)) {
          io::RawChunk c{"comf", std::vector<uint8_t>(key.begin(), key.end())};
          c.data.push_back(0);
          c.data.insert(c.data.end(), text.begin(), text.end());
          chunks.push_back(std::move(c));
        }
        std::string file = numbered(p.filename, p.counter, ".png");
        int level = static_cast<int>(std::clamp<int64_t>(in.get_int("compress_level"), 0, 9));
        io::write_file_atomic(p.full_output_folder / file,
                              io::encode_apng(f.pointers, f.width, f.height, f.channels,
                                              static_cast<int>(1000.0 / in.get_float("fps")), level, chunks));
        return NodeOutput({}, animated_ui(p, file, f.images.size(0)));
      });
}

// ---- stitch, rotate, flip ----

at::Tensor pad_batch(const at::Tensor& image, int64_t batch) {
  if (image.size(0) >= batch) return image;
  return at::cat({image, image.slice(0, -1).repeat({batch - image.size(0), 1, 1, 1})});
}

at::Tensor add_ones_channels(const at::Tensor& image, int64_t channels) {
  if (image.size(-1) >= channels) return image;
  auto shape = image.sizes().vec();
  shape.back() = channels - image.size(-1);
  return at::cat({image, at::ones(shape, image.options())}, -1);
}

NodeDef ImageStitch() {
  return images_node("ImageStitch", "image/transform")
      .display_name("Image Stitch")
      .description(
          "Stitches image2 to image1 in the specified direction.\nIf image2 is not provided, returns image1 "
          "unchanged.\nOptional spacing can be added between images.")
      .input("image1", "IMAGE", json::object())
      .v3_combo("direction", [](const Services&) { return std::vector<std::string>{"right", "down", "left", "up"}; },
                {{"default", "right"}})
      .input("match_image_size", "BOOLEAN", {{"default", true}})
      .input("spacing_width", "INT", {{"default", 0}, {"min", 0}, {"max", 1024}, {"step", 2}})
      .v3_combo("spacing_color",
                [](const Services&) { return std::vector<std::string>{"white", "black", "red", "green", "blue"}; },
                {{"default", "white"}})
      .optional_input("image2", "IMAGE", json::object())
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        at::Tensor image1 = image_in(in, "image1");
        if (!in.has("image2") || in["image2"].is_none()) return NodeOutput({tensor_value(image1)});
        at::Tensor image2 = image_in(in, "image2");
        const std::string& direction = in.get_string("direction");
        bool horizontal = direction == "left" || direction == "right";
        int64_t batch = std::max(image1.size(0), image2.size(0));
        image1 = pad_batch(image1, batch);
        image2 = pad_batch(image2, batch);
        const std::string& color = in.get_string("spacing_color");
        bool match = in.get_bool("match_image_size");
        if (match) {
          int64_t h1 = image1.size(1), w1 = image1.size(2), h2 = image2.size(1), w2 = image2.size(2);
          double aspect = static_cast<double>(w2) / h2;
          int64_t th = h1, tw = w1;
          if (horizontal) tw = static_cast<int64_t>(h1 * aspect);
          else th = static_cast<int64_t>(w1 / aspect);
          image2 = upscale_image(image2, tw, th, "lanczos", "disabled");
        } else {
          double pad_value = color == "white" ? 1.0 : 0.0;
          int dim = horizontal ? 1 : 2;
          int64_t target = std::max(image1.size(dim), image2.size(dim));
          auto pad = [&](const at::Tensor& t) {
            int64_t p = target - t.size(dim);
            if (p <= 0) return t;
            if (horizontal) return at::constant_pad_nd(t, {0, 0, 0, 0, p / 2, p - p / 2}, pad_value);
            return at::constant_pad_nd(t, {0, 0, p / 2, p - p / 2}, pad_value);
          };
          image1 = pad(image1);
          image2 = pad(image2);
        }
        int64_t channels = std::max(image1.size(-1), image2.size(-1));
        image1 = add_ones_channels(image1, channels);
        image2 = add_ones_channels(image2, channels);
        std::vector<at::Tensor> parts = direction == "left" || direction == "up" ? std::vector<at::Tensor>{image2, image1}
                                                                                 : std::vector<at::Tensor>{image1, image2};
        int64_t spacing = in.get_int("spacing_width");
        if (spacing > 0) {
          spacing += spacing % 2;
          std::vector<int64_t> shape =
              horizontal ? std::vector<int64_t>{image1.size(0), std::max(image1.size(1), image2.size(1)), spacing, channels}
                         : std::vector<int64_t>{image1.size(0), spacing, std::max(image1.size(2), image2.size(2)), channels};
          at::Tensor sp = at::zeros(shape, at::kFloat);
          if (color == "white" || color == "black") {
            sp.narrow(-1, 0, std::min<int64_t>(3, channels)).fill_(color == "white" ? 1.0 : 0.0);
          } else {
            int idx = color == "red" ? 0 : color == "green" ? 1 : 2;
            if (idx < channels) sp.select(-1, idx).fill_(1.0);
          }
          if (channels == 4) sp.select(-1, 3).fill_(1.0);
          parts.insert(parts.begin() + 1, sp);
        }
        return NodeOutput({tensor_value(at::cat(parts, horizontal ? 2 : 1))});
      });
}

NodeDef ImageRotate() {
  return images_node("ImageRotate", "image/transform")
      .input("image", "IMAGE", json::object())
      .v3_combo("rotation",
                [](const Services&) { return std::vector<std::string>{"none", "90 degrees", "180 degrees", "270 degrees"}; },
                json::object())
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        const std::string& rotation = in.get_string("rotation");
        int64_t k = rotation.rfind("90", 0) == 0 ? 1 : rotation.rfind("180", 0) == 0 ? 2 : rotation.rfind("270", 0) == 0 ? 3 : 0;
        return NodeOutput({tensor_value(at::rot90(image_in(in), k, {2, 1}))});
      });
}

NodeDef ImageFlip() {
  return images_node("ImageFlip", "image/transform")
      .input("image", "IMAGE", json::object())
      .v3_combo("flip_method",
                [](const Services&) { return std::vector<std::string>{"x-axis: vertically", "y-axis: horizontally"}; },
                json::object())
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        const std::string& method = in.get_string("flip_method");
        at::Tensor image = image_in(in);
        if (!method.empty() && method[0] == 'x') image = at::flip(image, {1});
        else if (!method.empty() && method[0] == 'y') image = at::flip(image, {2});
        return NodeOutput({tensor_value(image)});
      });
}

}  // namespace

void register_images(Registry& r) {
  r.add(ImageCrop());
  r.add(RepeatImageBatch());
  r.add(ImageFromBatch());
  r.add(SaveAnimatedWEBP());
  r.add(SaveAnimatedPNG());
  r.add(ImageStitch());
  r.add(ImageRotate());
  r.add(ImageFlip());
}

}  // namespace comfy
