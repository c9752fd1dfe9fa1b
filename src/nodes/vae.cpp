// ComfyUI's VAE nodes (nodes.py): VAEDecode, VAEEncode, their tiled variants, the inpainting
// encoders (VAEEncodeForInpaint, InpaintModelConditioning) and VAELoader.
// TAESD files load from safetensors only (ComfyUI also reads .pth pickles).
#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "core/tensor.h"
#include "graph/execution_context.h"
#include "io/safetensors.h"
#include "models/conditioning.h"
#include "models/folder_paths.h"
#include "models/latent.h"
#include "models/vae_model.h"
#include "models/weights.h"
#include "nodes/all.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

const at::Tensor& image_in(const NodeInputs& in, const char* name) { return tensor_of(in[name], "IMAGE"); }
const at::Tensor& mask_in(const NodeInputs& in, const char* name) { return tensor_of(in[name], "MASK"); }

Value latent_out(at::Tensor samples) {
  Latent l;
  l.samples = std::move(samples);
  return latent_value(std::move(l));
}

NodeDef VAEDecode() {
  return NodeDef("VAEDecode")
      .display_name("VAE Decode")
      .description("Decodes latent images back into pixel space images.")
      .category("latent")
      .input("samples", "LATENT", {{"tooltip", "The latent to be decoded."}})
      .input("vae", "VAE", {{"tooltip", "The VAE model used for decoding the latent."}})
      .output("IMAGE", {}, "The decoded image.")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const Latent& latent = latent_of(in["samples"]);
        const Vae& vae = vae_of(in["vae"]);
        return torch_guarded([&] { return NodeOutput({tensor_value(vae.decode(latent.samples))}); });
      });
}

NodeDef VAEEncode() {
  return NodeDef("VAEEncode")
      .display_name("VAE Encode")
      .category("latent")
      .input("pixels", "IMAGE")
      .input("vae", "VAE")
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const Vae& vae = vae_of(in["vae"]);
        const at::Tensor& pixels = image_in(in, "pixels");
        return torch_guarded([&] { return NodeOutput({latent_out(vae.encode(pixels))}); });
      });
}

json temporal_opts(int64_t def, int64_t min, const char* what) {
  return {{"default", def}, {"min", min}, {"max", 4096}, {"step", 4},
          {"tooltip", std::string("Only used for video VAEs: Amount of frames to ") + what}};
}

NodeDef VAEDecodeTiled() {
  return NodeDef("VAEDecodeTiled")
      .display_name("VAE Decode (Tiled)")
      .category("_for_testing")
      .input("samples", "LATENT")
      .input("vae", "VAE")
      .input("tile_size", "INT", {{"default", 512}, {"min", 64}, {"max", 4096}, {"step", 32}})
      .input("overlap", "INT", {{"default", 64}, {"min", 0}, {"max", 4096}, {"step", 32}})
      .input("temporal_size", "INT", temporal_opts(64, 8, "decode at a time."))
      .input("temporal_overlap", "INT", temporal_opts(8, 4, "overlap."))
      .output("IMAGE")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const Vae& vae = vae_of(in["vae"]);
        int64_t tile = in.get_int("tile_size"), overlap = in.get_int("overlap");
        if (tile < overlap * 4) overlap = tile / 4;
        // temporal_size/temporal_overlap only matter for video VAEs (temporal compression None).
        const int64_t c = vae.spacial_compression_decode();
        const at::Tensor& samples = latent_of(in["samples"]).samples;
        return torch_guarded([&] { return NodeOutput({tensor_value(vae.decode_tiled(samples, tile / c, tile / c, overlap / c))}); });
      });
}

NodeDef VAEEncodeTiled() {
  return NodeDef("VAEEncodeTiled")
      .display_name("VAE Encode (Tiled)")
      .category("_for_testing")
      .input("pixels", "IMAGE")
      .input("vae", "VAE")
      .input("tile_size", "INT", {{"default", 512}, {"min", 64}, {"max", 4096}, {"step", 64}})
      .input("overlap", "INT", {{"default", 64}, {"min", 0}, {"max", 4096}, {"step", 32}})
      .input("temporal_size", "INT", temporal_opts(64, 8, "encode at a time."))
      .input("temporal_overlap", "INT", temporal_opts(8, 4, "overlap."))
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        const Vae& vae = vae_of(in["vae"]);
        int64_t tile = in.get_int("tile_size");
        const at::Tensor& pixels = image_in(in, "pixels");
        const int64_t overlap = in.get_int("overlap");
        return torch_guarded([&] { return NodeOutput({latent_out(vae.encode_tiled(pixels, tile, tile, overlap))}); });
      });
}

// What the two inpainting encoders share: the mask resized bilinearly to the pixels
// ([B,1,H,W]), both centre-cropped to multiples of `ratio`, and the masked pixels set to grey
// ((x-0.5)*(1-round(mask))+0.5 on the RGB channels).
struct InpaintPixels {
  at::Tensor pixels;  // cropped, masked
  at::Tensor mask;    // [B,1,H',W'], cropped, not rounded
  int64_t x = 0, y = 0;  // the cropped height and width
};

InpaintPixels prepare_inpaint(const at::Tensor& image, const at::Tensor& mask_in_, int64_t ratio) {
  if (image.dim() != 4) throw ComfyError("ValueError", "pixels must be an IMAGE [B,H,W,C], got " + c10::str(image.sizes()));
  if (mask_in_.dim() < 2) throw ComfyError("ValueError", "mask must be a MASK [B,H,W], got " + c10::str(mask_in_.sizes()));
  InpaintPixels r;
  const int64_t h = image.size(1), w = image.size(2);
  r.x = (h / ratio) * ratio;
  r.y = (w / ratio) * ratio;
  at::Tensor mask = mask_in_.to(at::kFloat).reshape({-1, 1, mask_in_.size(-2), mask_in_.size(-1)});
  mask = at::upsample_bilinear2d(mask, {h, w}, false);
  at::Tensor pixels = image.to(at::kFloat).clone();
  if (h != r.x || w != r.y) {
    int64_t x_offset = (h % ratio) / 2, y_offset = (w % ratio) / 2;
    pixels = pixels.narrow(1, x_offset, r.x).narrow(2, y_offset, r.y);
    mask = mask.narrow(2, x_offset, r.x).narrow(3, y_offset, r.y);
  }
  at::Tensor m = (1.0 - mask.round()).squeeze(1);
  for (int64_t i = 0; i < std::min<int64_t>(3, pixels.size(3)); ++i) {
    at::Tensor c = pixels.select(3, i);
    c.sub_(0.5).mul_(m).add_(0.5);
  }
  r.pixels = pixels;
  r.mask = mask;
  return r;
}

NodeDef VAEEncodeForInpaint() {
  return NodeDef("VAEEncodeForInpaint")
      .display_name("VAE Encode (for Inpainting)")
      .category("latent/inpaint")
      .input("pixels", "IMAGE")
      .input("vae", "VAE")
      .input("mask", "MASK")
      .input("grow_mask_by", "INT", {{"default", 6}, {"min", 0}, {"max", 64}, {"step", 1}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Vae& vae = vae_of(in["vae"]);
          const int64_t grow = in.get_int("grow_mask_by");
          InpaintPixels p = prepare_inpaint(image_in(in, "pixels"), mask_in(in, "mask"), vae.downscale_ratio());
          // Grow the mask by a few pixels to keep the seam clean in latent space.
          at::Tensor erosion = p.mask;
          if (grow != 0) {
            at::Tensor kernel = at::ones({1, 1, grow, grow});
            int64_t padding = static_cast<int64_t>(std::ceil((grow - 1) / 2.0));
            erosion = at::clamp(at::conv2d(p.mask.round(), kernel, {}, 1, padding), 0, 1);
          }
          Latent l;
          l.samples = vae.encode(p.pixels);
          l.noise_mask = erosion.narrow(2, 0, std::min(p.x, erosion.size(2)))
                             .narrow(3, 0, std::min(p.y, erosion.size(3)))
                             .round();
          return NodeOutput({latent_value(std::move(l))});
        });
      });
}

// node_helpers.conditioning_set_values: every entry copied with these options set.
Conditioning with_concat(const Conditioning& c, const at::Tensor& concat_latent, const at::Tensor& mask) {
  Conditioning out = c;
  for (auto& e : out.entries) {
    e.options.concat_latent_image = concat_latent;
    e.options.concat_mask = mask;
  }
  return out;
}

NodeDef InpaintModelConditioning() {
  return NodeDef("InpaintModelConditioning")
      .display_name("InpaintModelConditioning")
      .category("conditioning/inpaint")
      .input("positive", "CONDITIONING")
      .input("negative", "CONDITIONING")
      .input("vae", "VAE")
      .input("pixels", "IMAGE")
      .input("mask", "MASK")
      .input("noise_mask", "BOOLEAN",
             {{"default", true},
              {"tooltip",
               "Add a noise mask to the latent so sampling will only happen within the mask. Might improve results "
               "or completely break things depending on the model."}})
      .output("CONDITIONING", "positive")
      .output("CONDITIONING", "negative")
      .output("LATENT", "latent")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Vae& vae = vae_of(in["vae"]);
          const at::Tensor& pixels = image_in(in, "pixels");
          // ComfyUI crops to multiples of 8 here whatever the VAE's ratio.
          InpaintPixels p = prepare_inpaint(pixels, mask_in(in, "mask"), 8);
          at::Tensor concat_latent = vae.encode(p.pixels);
          Latent l;
          l.samples = vae.encode(pixels);
          if (in.get_bool("noise_mask")) l.noise_mask = p.mask;
          return NodeOutput({conditioning_value(with_concat(conditioning_of(in["positive"]), concat_latent, p.mask)),
                             conditioning_value(with_concat(conditioning_of(in["negative"]), concat_latent, p.mask)),
                             latent_value(std::move(l))});
        });
      });
}

// ---- VAELoader ----

const std::vector<std::string>& video_taes() {
  static const std::vector<std::string> v{"taehv", "lighttaew2_2", "lighttaew2_1", "lighttaehy1_5"};
  return v;
}
const std::vector<std::string>& image_taes() {
  static const std::vector<std::string> v{"taesd", "taesdxl", "taesd3", "taef1"};
  return v;
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::vector<std::string> list_folder(const Services& s, const std::string& folder) {
  if (s.list_folder) return s.list_folder(folder);
  if (s.folders) return s.folders->get_filename_list(folder);
  return {};
}

// VAELoader.vae_list: the vae folder, the video TAEs of vae_approx, each image TAE whose encoder
// and decoder are both present, then "pixel_space".
std::vector<std::string> vae_list(const Services& s) {
  std::vector<std::string> vaes = list_folder(s, "vae");
  bool enc[4] = {false, false, false, false}, dec[4] = {false, false, false, false};
  for (const std::string& v : list_folder(s, "vae_approx")) {
    if (starts_with(v, "taesd_decoder.")) dec[0] = true;
    else if (starts_with(v, "taesd_encoder.")) enc[0] = true;
    else if (starts_with(v, "taesdxl_decoder.")) dec[1] = true;
    else if (starts_with(v, "taesdxl_encoder.")) enc[1] = true;
    else if (starts_with(v, "taesd3_decoder.")) dec[2] = true;
    else if (starts_with(v, "taesd3_encoder.")) enc[2] = true;
    // sic: ComfyUI swaps the two flags for taef1; both are needed either way.
    else if (starts_with(v, "taef1_encoder.")) dec[3] = true;
    else if (starts_with(v, "taef1_decoder.")) enc[3] = true;
    else
      for (const std::string& tae : video_taes())
        if (starts_with(v, tae)) vaes.push_back(v);
  }
  for (int i = 0; i < 4; ++i)
    if (dec[i] && enc[i]) vaes.push_back(image_taes()[i]);
  vaes.push_back("pixel_space");
  return vaes;
}

std::string stem(const std::string& name) {
  std::filesystem::path p(name);
  return (p.parent_path() / p.stem()).generic_string();
}

std::shared_ptr<const SafetensorsFile> open_safetensors(const std::filesystem::path& path, const std::string& name) {
  std::string ext = path.extension().string();
  if (ext != ".safetensors" && ext != ".sft")
    throw ComfyError("NotImplementedError", "VAELoader: only .safetensors files can be loaded, not '" + name + "'");
  return SafetensorsFile::open(path);
}

// VAELoader.load_taesd: the encoder and decoder files of vae_approx under "taesd_encoder." and
// "taesd_decoder.", with the family's latent scale and shift.
std::shared_ptr<const Vae> load_taesd(const Services& s, const std::string& name) {
  std::unordered_map<std::string, at::Tensor> tensors;
  const auto approx = list_folder(s, "vae_approx");
  for (const char* part : {"encoder", "decoder"}) {
    std::string prefix = name + "_" + part + ".";
    auto it = std::find_if(approx.begin(), approx.end(), [&](const std::string& v) { return starts_with(v, prefix); });
    if (it == approx.end()) throw ComfyError("StopIteration", "");  // next() on an empty filter
    auto file = open_safetensors(s.folders->get_full_path_or_raise("vae_approx", *it), *it);
    for (const std::string& k : file->keys()) tensors["taesd_" + std::string(part) + "." + k] = file->tensor(k);
  }
  static const std::map<std::string, std::pair<float, float>> scale_shift{
      {"taesd", {0.18215f, 0.0f}}, {"taesdxl", {0.13025f, 0.0f}}, {"taesd3", {1.5305f, 0.0609f}}, {"taef1", {0.3611f, 0.1159f}}};
  auto [scale, shift] = scale_shift.at(name);
  tensors["vae_scale"] = at::scalar_tensor(scale, at::kFloat);
  tensors["vae_shift"] = at::scalar_tensor(shift, at::kFloat);
  return Vae::taesd(Weights(WeightSet::from_tensors(std::move(tensors))));
}

std::shared_ptr<const Vae> load_vae(const Services& s, const std::string& name) {
  if (name == "pixel_space") return Vae::pixel_space();
  if (!s.folders) throw ComfyError("RuntimeError", "no folders configured");
  for (const std::string& t : image_taes())
    if (name == t) return load_taesd(s, name);
  for (const std::string& t : video_taes())
    if (stem(name) == t) throw ComfyError("NotImplementedError", "VAELoader: '" + name + "' (a video TAE) is not supported");
  auto set = WeightSet::from_file(open_safetensors(s.folders->get_full_path_or_raise("vae", name), name));
  try {
    return make_vae(Weights(set));
  } catch (const ComfyError& e) {
    throw ComfyError(e.type(), std::string(e.what()) + " (file: " + name + ")");
  }
}

NodeDef VAELoader() {
  NodeDef def("VAELoader");
  def.display_name("Load VAE").category("loaders");
  def.combo("vae_name", vae_list);
  def.required.back().folder = "vae";
  return def.output("VAE").run([](ExecutionContext& ctx, const NodeInputs& in) {
    return NodeOutput({Value(std::static_pointer_cast<const Object>(load_vae(ctx.services(), in.get_string("vae_name"))))});
  });
}

}  // namespace

void register_vae(Registry& r) {
  r.add(VAEDecode());
  r.add(VAEEncode());
  r.add(VAEEncodeForInpaint());
  r.add(VAELoader());
  r.add(VAEDecodeTiled());
  r.add(VAEEncodeTiled());
  r.add(InpaintModelConditioning());
}

}  // namespace comfy
