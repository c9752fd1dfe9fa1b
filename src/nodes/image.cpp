// ComfyUI's nodes.py image nodes: loading (LoadImage, LoadImageMask, LoadImageOutput), saving
// (SaveImage, PreviewImage) and the simple transforms (EmptyImage, ImageInvert, ImageBatch,
// ImageScale, ImageScaleBy, ImagePadForOutpaint).
#include <c10/core/InferenceMode.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>
#include <random>
#include <set>

#include "core/error.h"
#include "io/sha256.h"
#include "core/tensor.h"
#include "core/upscale.h"
#include "graph/execution_context.h"
#include "io/image.h"
#include "io/png.h"
#include "models/folder_paths.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/image_save.h"

namespace comfy {
namespace {

// ---- loading ----

// Extensions Python's mimetypes (with Debian's /etc/mime.types, as the reference machine has)
// calls image/*; ComfyUI's LoadImage lists only these.
bool is_image_filename(const std::string& name) {
  static const std::set<std::string> exts = {
      "pgb",  "apng", "avci", "avcs", "avif", "azv",  "b16",  "bmp",  "btf",  "btif", "cdr",  "cdt",  "cgm",
      "cpt",  "cr2",  "crw",  "djv",  "djvu", "dpx",  "drle", "dwg",  "dxf",  "emf",  "erf",  "exr",  "fbs",
      "fit",  "fits", "fpx",  "fst",  "fts",  "gif",  "hdr",  "heic", "heics", "heif", "heifs", "hej2", "hif",
      "hsj2", "ico",  "ief",  "jfif", "jhc",  "jls",  "jng",  "jp2",  "jpe",  "jpeg", "jpf",  "jpg",  "jpg2",
      "jpgm", "jph",  "jphc", "jpm",  "jpx",  "jxl",  "jxr",  "jxra", "jxrs", "jxs",  "jxsc", "jxsi", "jxss",
      "ktx",  "ktx2", "mdi",  "mmr",  "nef",  "orf",  "pat",  "pbm",  "pct",  "pcx",  "pgm",  "pic",  "pict",
      "png",  "pnm",  "ppm",  "psd",  "pti",  "ras",  "rgb",  "rgbe", "rlc",  "s1g",  "s1j",  "s1n",  "sgi",
      "sgif", "sjp",  "sjpg", "spn",  "spng", "svg",  "svgz", "tap",  "tfx",  "tif",  "tiff", "uvg",  "uvi",
      "uvvg", "uvvi", "vtf",  "wbmp", "webp", "wmf",  "xbm",  "xcf",  "xif",  "xpm",  "xwd",  "xyze"};
  size_t dot = name.rfind('.');
  if (dot == std::string::npos) return false;
  std::string ext = name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return exts.count(ext) > 0;
}

std::vector<std::string> input_images(const Services& s) {
  std::vector<std::string> out;
  if (!s.folders) return out;
  for (auto& f : s.folders->list_input_files())
    if (is_image_filename(f)) out.push_back(f);
  return out;
}

std::vector<std::string> input_files(const Services& s) {
  return s.folders ? s.folders->list_input_files() : std::vector<std::string>{};
}

json file_sha256(const Services& s, const NodeInputs& in) {
  try {
    return io::sha256_file_hex(folders(s).get_annotated_filepath(in.get_string("image")));
  } catch (const std::exception&) {
    return json(std::nan(""));  // ComfyUI: an IS_CHANGED that raises means "always changed"
  }
}

std::variant<bool, std::string> image_exists(const Services& s, const NodeInputs& in,
                                             const std::map<std::string, std::string>&) {
  const std::string& image = in.get_string("image");
  if (!s.folders || !s.folders->exists_annotated_filepath(image)) return "Invalid image file: " + image;
  return true;
}

io::DecodedImage open_image(const Services& s, const std::string& name) {
  return io::read_image(folders(s).get_annotated_filepath(name));
}

// Pillow's I-mode point(lambda i: i * (1 / 255)) (truncated) and the clip to 8 bits on convert.
uint8_t wide_to_u8(int32_t v) {
  auto t = static_cast<int32_t>(v * (1.0 / 255));
  return static_cast<uint8_t>(t < 0 ? 0 : t > 255 ? 255 : t);
}

// A frame as Pillow's convert("RGBA"): grey replicated, opaque where there is no alpha.
std::vector<uint8_t> to_rgba(const io::Frame& f, const io::DecodedImage& img) {
  size_t n = static_cast<size_t>(f.width) * f.height;
  std::vector<uint8_t> out(n * 4);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* o = &out[i * 4];
    if (img.mode == "I") {
      o[0] = o[1] = o[2] = wide_to_u8(f.wide[i]);
      o[3] = 255;
      continue;
    }
    const uint8_t* p = &f.pixels[i * img.channels];
    switch (img.channels) {
      case 1: o[0] = o[1] = o[2] = p[0]; o[3] = 255; break;
      case 2: o[0] = o[1] = o[2] = p[0]; o[3] = p[1]; break;
      case 3: o[0] = p[0]; o[1] = p[1]; o[2] = p[2]; o[3] = 255; break;
      default: std::copy(p, p + 4, o); break;
    }
  }
  return out;
}

bool has_alpha(const io::DecodedImage& img) {
  return img.mode == "LA" || img.mode == "RGBA" || (img.mode == "P" && img.palette_transparency);
}

NodeOutput load_image(const Services& s, const std::string& name) {
  io::DecodedImage img = open_image(s, name);
  std::vector<at::Tensor> images, masks;
  int w = -1, h = -1;
  for (auto& raw : img.frames) {
    io::Frame f = io::apply_orientation(raw, img.channels, img.exif_orientation);
    if (images.empty()) {
      w = f.width;
      h = f.height;
    }
    if (f.width != w || f.height != h) continue;
    std::vector<uint8_t> rgba = to_rgba(f, img);
    at::Tensor px = at::from_blob(rgba.data(), {f.height, f.width, 4}, at::kByte).to(at::kFloat);
    images.push_back((px.narrow(2, 0, 3) / 255.0).unsqueeze(0));
    if (has_alpha(img)) masks.push_back((1.0 - px.select(2, 3) / 255.0).unsqueeze(0));
    else masks.push_back(at::zeros({1, 64, 64}, at::kFloat));
    if (img.format == "MPO") break;
  }
  if (images.empty()) throw ComfyError("OSError", "no frames in image file '" + name + "'");
  return NodeOutput({tensor_value(at::cat(images, 0)), tensor_value(at::cat(masks, 0))});
}

NodeDef LoadImage() {
  NodeDef def("LoadImage");
  def.display_name("Load Image").category("image");
  def.combo("image", input_images, {{"image_upload", true}});
  def.required.back().folder = "input";
  return def.output("IMAGE")
      .output("MASK")
      .fingerprint(file_sha256)
      .validator(image_exists, {"image"})
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        return load_image(ctx.services(), in.get_string("image"));
      });
}

NodeDef LoadImageMask() {
  NodeDef def("LoadImageMask");
  def.display_name("Load Image (as Mask)").category("mask");
  def.combo("image", input_files, {{"image_upload", true}});
  def.required.back().folder = "input";
  return def.combo("channel", std::vector<std::string>{"alpha", "red", "green", "blue"})
      .output("MASK")
      .fingerprint(file_sha256)
      .validator(image_exists, {"image"})
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        io::DecodedImage img = open_image(ctx.services(), in.get_string("image"));
        io::Frame f = io::apply_orientation(img.frames.at(0), img.channels, img.exif_orientation);
        std::vector<uint8_t> rgba = to_rgba(f, img);
        const std::string& channel = in.get_string("channel");
        int c = channel == "alpha" ? 3 : channel == "red" ? 0 : channel == "green" ? 1 : 2;
        at::Tensor px = at::from_blob(rgba.data(), {f.height, f.width, 4}, at::kByte).to(at::kFloat);
        at::Tensor mask = px.select(2, c) / 255.0;
        if (c == 3) mask = 1.0 - mask;
        return NodeOutput({tensor_value(mask.unsqueeze(0))});
      });
}

NodeDef LoadImageOutput() {
  return NodeDef("LoadImageOutput")
      .display_name("Load Image (from Outputs)")
      .description(
          "Load an image from the output folder. When the refresh button is clicked, the node will update the image "
          "list and automatically select the first image, allowing for easy iteration.")
      .category("image")
      .experimental()
      .input("image", "COMBO",
             {{"image_upload", true},
              {"image_folder", "output"},
              {"remote",
               {{"route", "/internal/files/output"}, {"refresh_button", true}, {"control_after_refresh", "first"}}}})
      .output("IMAGE")
      .output("MASK")
      .fingerprint(file_sha256)
      .validator(image_exists, {"image"})
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        return load_image(ctx.services(), in.get_string("image"));
      });
}

// ---- saving ----

json save_images(const Services& s, const NodeInputs& in, const std::filesystem::path& dir, const std::string& type,
                 const std::string& prefix, int compress_level) {
  at::Tensor images = image_batch_for_saving(in, "images");
  int64_t h = images.size(1), w = images.size(2), c = images.size(3);
  FolderPaths::SavePath p = folders(s).get_save_image_path(prefix, dir, static_cast<int>(w), static_cast<int>(h));
  auto text = save_metadata(in, s.options.disable_metadata);
  json results = json::array();
  int counter = p.counter;
  for (int64_t b = 0; b < images.size(0); ++b) {
    std::vector<uint8_t> px = image_to_u8(images[b]);
    std::string name = p.filename;
    for (size_t at = name.find("%batch_num%"); at != std::string::npos; at = name.find("%batch_num%", at)) {
      name.replace(at, 11, std::to_string(b));
      at += std::to_string(b).size();
    }
    char number[16];
    std::snprintf(number, sizeof number, "%05d", counter);
    std::string file = name + "_" + number + "_.png";
    io::write_file_atomic(p.full_output_folder / file,
                          io::encode_png(px.data(), static_cast<int>(w), static_cast<int>(h), static_cast<int>(c),
                                         compress_level, text));
    results.push_back(saved_result(file, p.subfolder, type));
    ++counter;
  }
  return json{{"images", results}};
}

NodeDef SaveImage() {
  return NodeDef("SaveImage")
      .display_name("Save Image")
      .description("Saves the input images to your ComfyUI output directory.")
      .category("image")
      .input("images", "IMAGE", {{"tooltip", "The images to save."}})
      .input("filename_prefix", "STRING",
             {{"default", "ComfyUI"},
              {"tooltip",
               "The prefix for the file to save. This may include formatting information such as "
               "%date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."}})
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO")
      .output_node()
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        const Services& s = ctx.services();
        return NodeOutput({}, save_images(s, in, folders(s).output_directory(), "output",
                                          in.get_string("filename_prefix"), 4));
      });
}

// PreviewImage's "_temp_" + 5 letters, chosen once per node object: ComfyUI keeps the object
// while the node id keeps its class, and so does our node state.
struct PreviewSuffix {
  std::string value;
};

const std::string& preview_suffix(ExecutionContext& ctx) {
  PreviewSuffix& state = ctx.node_state<PreviewSuffix>();
  if (state.value.empty()) {
    static std::mutex mutex;
    static std::mt19937 rng{std::random_device{}()};
    static const char letters[] = "abcdefghijklmnopqrstupvxyz";  // sic: ComfyUI's alphabet
    std::lock_guard<std::mutex> lock(mutex);
    state.value = "_temp_";
    for (int i = 0; i < 5; ++i) state.value.push_back(letters[rng() % 26]);
  }
  return state.value;
}

NodeDef PreviewImage() {
  return NodeDef("PreviewImage")
      .display_name("Preview Image")
      .description("Saves the input images to your ComfyUI output directory.")
      .category("image")
      .input("images", "IMAGE")
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO")
      .output_node()
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        const Services& s = ctx.services();
        return NodeOutput({}, save_images(s, in, folders(s).temp_directory(), "temp",
                                          "ComfyUI" + preview_suffix(ctx), 1));
      });
}

// ---- transforms ----

NodeDef ImageScale() {
  return NodeDef("ImageScale")
      .display_name("Upscale Image")
      .category("image/upscaling")
      .input("image", "IMAGE")
      .combo("upscale_method", std::vector<std::string>{"nearest-exact", "bilinear", "area", "bicubic", "lanczos"})
      .input("width", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}})
      .input("height", "INT", {{"default", 512}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}})
      .combo("crop", std::vector<std::string>{"disabled", "center"})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        at::Tensor image = tensor_of(in["image"], "IMAGE");
        int64_t width = in.get_int("width"), height = in.get_int("height");
        if (width == 0 && height == 0) return NodeOutput({tensor_value(image)});
        if (width == 0)
          width = std::max<int64_t>(1, std::nearbyint(static_cast<double>(image.size(2)) * height / image.size(1)));
        else if (height == 0)
          height = std::max<int64_t>(1, std::nearbyint(static_cast<double>(image.size(1)) * width / image.size(2)));
        return NodeOutput(
            {tensor_value(upscale_image(image, width, height, in.get_string("upscale_method"), in.get_string("crop")))});
      });
}

NodeDef ImageScaleBy() {
  return NodeDef("ImageScaleBy")
      .display_name("Upscale Image By")
      .category("image/upscaling")
      .input("image", "IMAGE")
      .combo("upscale_method", std::vector<std::string>{"nearest-exact", "bilinear", "area", "bicubic", "lanczos"})
      .input("scale_by", "FLOAT", {{"default", 1.0}, {"min", 0.01}, {"max", 8.0}, {"step", 0.01}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        const at::Tensor& image = tensor_of(in["image"], "IMAGE");
        double scale = in.get_float("scale_by");
        auto width = static_cast<int64_t>(std::nearbyint(image.size(2) * scale));
        auto height = static_cast<int64_t>(std::nearbyint(image.size(1) * scale));
        return NodeOutput({tensor_value(upscale_image(image, width, height, in.get_string("upscale_method"), "disabled"))});
      });
}

NodeDef ImageInvert() {
  return NodeDef("ImageInvert")
      .display_name("Invert Image")
      .category("image")
      .input("image", "IMAGE")
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        return NodeOutput({tensor_value(1.0 - tensor_of(in["image"], "IMAGE"))});
      });
}

NodeDef ImageBatch() {
  return NodeDef("ImageBatch")
      .display_name("Batch Images")
      .category("image")
      .deprecated()
      .input("image1", "IMAGE")
      .input("image2", "IMAGE")
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        at::Tensor a = tensor_of(in["image1"], "IMAGE"), b = tensor_of(in["image2"], "IMAGE");
        if (a.size(-1) != b.size(-1)) {
          if (a.size(-1) > b.size(-1)) b = at::constant_pad_nd(b, {0, 1}, 1.0);
          else a = at::constant_pad_nd(a, {0, 1}, 1.0);
        }
        if (a.sizes().slice(1) != b.sizes().slice(1))
          b = upscale_image(b, a.size(2), a.size(1), "bilinear", "center");
        if (a.sizes().slice(1) != b.sizes().slice(1))
          throw ComfyError("RuntimeError", "Sizes of tensors must match except in dimension 0");
        return NodeOutput({tensor_value(at::cat({a, b}, 0))});
      });
}

NodeDef EmptyImage() {
  return NodeDef("EmptyImage")
      .category("image")
      .input("width", "INT", {{"default", 512}, {"min", 1}, {"max", kMaxResolution}, {"step", 1}})
      .input("height", "INT", {{"default", 512}, {"min", 1}, {"max", kMaxResolution}, {"step", 1}})
      .input("batch_size", "INT", {{"default", 1}, {"min", 1}, {"max", 4096}})
      .input("color", "INT", {{"default", 0}, {"min", 0}, {"max", 0xFFFFFF}, {"step", 1}, {"display", "color"}})
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        int64_t w = in.get_int("width"), h = in.get_int("height"), b = in.get_int("batch_size");
        int64_t color = in.get_int("color");
        if (w < 1 || h < 1 || b < 1 || b * w * h * 3 > (int64_t(1) << 31))
          throw ComfyError("ValueError", "EmptyImage: " + std::to_string(b) + " images of " + std::to_string(w) + "x" +
                                             std::to_string(h) + " are too large");
        std::vector<at::Tensor> planes;
        for (int shift : {16, 8, 0})
          planes.push_back(at::full({b, h, w, 1}, static_cast<double>((color >> shift) & 0xFF) / 0xFF, at::kFloat));
        return NodeOutput({tensor_value(at::cat(planes, -1))});
      });
}

NodeDef ImagePadForOutpaint() {
  auto pad = [](int64_t step) { return json{{"default", 0}, {"min", 0}, {"max", kMaxResolution}, {"step", step}}; };
  return NodeDef("ImagePadForOutpaint")
      .display_name("Pad Image for Outpainting")
      .category("image")
      .input("image", "IMAGE")
      .input("left", "INT", pad(8))
      .input("top", "INT", pad(8))
      .input("right", "INT", pad(8))
      .input("bottom", "INT", pad(8))
      .input("feathering", "INT", {{"default", 40}, {"min", 0}, {"max", kMaxResolution}, {"step", 1}})
      .output("IMAGE")
      .output("MASK")
      .run([](ExecutionContext&, const NodeInputs& in) {
        c10::InferenceMode guard;
        at::Tensor image = tensor_of(in["image"], "IMAGE");
        int64_t left = in.get_int("left"), top = in.get_int("top"), right = in.get_int("right"),
                bottom = in.get_int("bottom"), feathering = in.get_int("feathering");
        int64_t d1 = image.size(0), d2 = image.size(1), d3 = image.size(2), d4 = image.size(3);
        at::Tensor out = at::ones({d1, d2 + top + bottom, d3 + left + right, d4}, at::kFloat) * 0.5;
        out.narrow(1, top, d2).narrow(2, left, d3).copy_(image);
        at::Tensor mask = at::ones({d2 + top + bottom, d3 + left + right}, at::kFloat);
        at::Tensor t = at::zeros({d2, d3}, at::kFloat);
        if (feathering > 0 && feathering * 2 < d2 && feathering * 2 < d3) {
          float* tp = t.data_ptr<float>();
          for (int64_t i = 0; i < d2; ++i)
            for (int64_t j = 0; j < d3; ++j) {
              int64_t dt = top != 0 ? i : d2, db = bottom != 0 ? d2 - i : d2;
              int64_t dl = left != 0 ? j : d3, dr = right != 0 ? d3 - j : d3;
              int64_t d = std::min({dt, db, dl, dr});
              if (d >= feathering) continue;
              double v = static_cast<double>(feathering - d) / feathering;
              tp[i * d3 + j] = static_cast<float>(v * v);
            }
        }
        mask.narrow(0, top, d2).narrow(1, left, d3).copy_(t);
        return NodeOutput({tensor_value(out), tensor_value(mask.unsqueeze(0))});
      });
}

}  // namespace

void register_image(Registry& r) {
  r.add(SaveImage());
  r.add(PreviewImage());
  r.add(LoadImage());
  r.add(LoadImageMask());
  r.add(LoadImageOutput());
  r.add(ImageScale());
  r.add(ImageScaleBy());
  r.add(ImageInvert());
  r.add(ImageBatch());
  r.add(ImagePadForOutpaint());
  r.add(EmptyImage());
}

}  // namespace comfy
