// ComfyUI's LATENT nodes of nodes.py (EmptyLatentImage, LatentUpscale, LatentComposite, ...,
// SaveLatent/LoadLatent); register_latent also registers latent_extras.cpp's (nodes_latent.py's
// LatentAdd & co., nodes_mask.py's LatentCompositeMasked). A node copies its input Latent
// (Python's dict.copy(): noise_mask and batch_index carried along) and replaces what it changes.
// Tensor slicing uses at::Tensor::slice, which follows Python's slice rules (negative and
// out-of-range bounds), as the ComfyUI code these mirror relies on.
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <variant>

#include "core/error.h"
#include "io/sha256.h"
#include "core/tensor_utils.h"
#include "core/tensor.h"
#include "core/upscale.h"
#include "graph/execution_context.h"
#include "io/safetensors.h"
#include "models/folder_paths.h"
#include "models/latent.h"
#include "nodes/all.h"
#include "nodes/node_common.h"
#include "nodes/image_save.h"
#include "nodes/torch_errors.h"

namespace comfy {
namespace {

const Latent& latent_in(const NodeInputs& in, const char* name) { return latent_of(in[name]); }
NodeOutput one(Latent l) { return NodeOutput({latent_value(std::move(l))}); }

// Python's round() (half to even under the default rounding mode).
int64_t py_round(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

json int_opts(int64_t def, int64_t min, int64_t max, int64_t step) {
  return {{"default", def}, {"min", min}, {"max", max}, {"step", step}};
}

const std::vector<std::string>& upscale_methods() {
  static const std::vector<std::string> m{"nearest-exact", "bilinear", "area", "bicubic", "bislerp"};
  return m;
}

std::vector<int64_t> range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

// ---- nodes.py ----

NodeDef EmptyLatentImage() {
  return NodeDef("EmptyLatentImage")
      .display_name("Empty Latent Image")
      .description("Create a new batch of empty latent images to be denoised via sampling.")
      .category("latent")
      .input("width", "INT", {{"default", 512}, {"min", 16}, {"max", kMaxResolution}, {"step", 8},
                              {"tooltip", "The width of the latent images in pixels."}})
      .input("height", "INT", {{"default", 512}, {"min", 16}, {"max", kMaxResolution}, {"step", 8},
                               {"tooltip", "The height of the latent images in pixels."}})
      .input("batch_size", "INT", {{"default", 1}, {"min", 1}, {"max", 4096},
                                   {"tooltip", "The number of latent images in the batch."}})
      .output("LATENT", {}, "The empty latent image batch.")
      .run([](ExecutionContext&, const NodeInputs& in) {
        Latent l;
        l.samples = at::zeros({in.get_int("batch_size"), 4, floor_div(in.get_int("height"), 8),
                               floor_div(in.get_int("width"), 8)});
        return one(std::move(l));
      });
}

NodeDef LatentUpscale() {
  return NodeDef("LatentUpscale")
      .display_name("Upscale Latent")
      .category("latent")
      .input("samples", "LATENT")
      .combo("upscale_method", upscale_methods())
      .input("width", "INT", int_opts(512, 0, kMaxResolution, 8))
      .input("height", "INT", int_opts(512, 0, kMaxResolution, 8))
      .combo("crop", std::vector<std::string>{"disabled", "center"})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent s = latent_in(in, "samples");
          int64_t width = in.get_int("width"), height = in.get_int("height");
          if (width == 0 && height == 0) return one(s);
          const double h0 = static_cast<double>(s.samples.size(-2)), w0 = static_cast<double>(s.samples.size(-1));
          if (width == 0) {
            height = std::max<int64_t>(64, height);
            width = std::max<int64_t>(64, py_round(w0 * height / h0));
          } else if (height == 0) {
            width = std::max<int64_t>(64, width);
            height = std::max<int64_t>(64, py_round(h0 * width / w0));
          } else {
            width = std::max<int64_t>(64, width);
            height = std::max<int64_t>(64, height);
          }
          s.samples = common_upscale(s.samples, width / 8, height / 8, in.get_string("upscale_method"), in.get_string("crop"));
          return one(s);
        });
      });
}

NodeDef LatentUpscaleBy() {
  return NodeDef("LatentUpscaleBy")
      .display_name("Upscale Latent By")
      .category("latent")
      .input("samples", "LATENT")
      .combo("upscale_method", upscale_methods())
      .input("scale_by", "FLOAT", {{"default", 1.5}, {"min", 0.01}, {"max", 8.0}, {"step", 0.01}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent s = latent_in(in, "samples");
          double by = in.get_float("scale_by");
          int64_t width = py_round(s.samples.size(-1) * by), height = py_round(s.samples.size(-2) * by);
          s.samples = common_upscale(s.samples, width, height, in.get_string("upscale_method"), "disabled");
          return one(s);
        });
      });
}

NodeDef LatentFromBatch() {
  return NodeDef("LatentFromBatch")
      .display_name("Latent From Batch")
      .category("latent/batch")
      .input("samples", "LATENT")
      .input("batch_index", "INT", {{"default", 0}, {"min", 0}, {"max", 63}})
      .input("length", "INT", {{"default", 1}, {"min", 1}, {"max", 64}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Latent& src = latent_in(in, "samples");
          Latent s = src;
          const int64_t b = src.samples.size(0);
          // An index past the batch takes the last item; the length is cut to what is left.
          int64_t index = std::min(b - 1, in.get_int("batch_index"));
          int64_t length = std::min(b - index, in.get_int("length"));
          s.samples = src.samples.slice(0, index, index + length).clone();
          if (src.noise_mask.defined()) {
            at::Tensor masks = src.noise_mask;
            if (masks.size(0) == 1) {
              s.noise_mask = masks.clone();
            } else {
              if (masks.size(0) < b) masks = masks.repeat({(b + masks.size(0) - 1) / masks.size(0), 1, 1, 1}).slice(0, 0, b);
              s.noise_mask = masks.slice(0, index, index + length).clone();
            }
          }
          if (!src.batch_index) {
            s.batch_index = range(index, index + length);
          } else {
            const auto& bi = *src.batch_index;
            auto lo = std::clamp<int64_t>(index, 0, bi.size()), hi = std::clamp<int64_t>(index + length, lo, bi.size());
            s.batch_index = std::vector<int64_t>(bi.begin() + lo, bi.begin() + hi);
          }
          return one(s);
        });
      });
}

NodeDef RepeatLatentBatch() {
  return NodeDef("RepeatLatentBatch")
      .display_name("Repeat Latent Batch")
      .category("latent/batch")
      .input("samples", "LATENT")
      .input("amount", "INT", {{"default", 1}, {"min", 1}, {"max", 64}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Latent& src = latent_in(in, "samples");
          Latent s = src;
          const int64_t amount = in.get_int("amount");
          std::vector<int64_t> reps(src.samples.dim(), 1);
          reps[0] = amount;
          s.samples = src.samples.repeat(reps);
          if (src.noise_mask.defined() && src.noise_mask.size(0) > 1) {
            std::vector<int64_t> mreps(src.noise_mask.dim(), 1);
            mreps[0] = amount;
            s.noise_mask = src.noise_mask.repeat(mreps);
          }
          if (src.batch_index && !src.batch_index->empty()) {
            const auto& bi = *src.batch_index;
            int64_t offset = *std::max_element(bi.begin(), bi.end()) - *std::min_element(bi.begin(), bi.end()) + 1;
            std::vector<int64_t> out = bi;
            for (int64_t i = 1; i < amount; ++i)
              for (int64_t x : bi) out.push_back(x + i * offset);
            s.batch_index = out;
          }
          return one(s);
        });
      });
}

NodeDef SetLatentNoiseMask() {
  return NodeDef("SetLatentNoiseMask")
      .display_name("Set Latent Noise Mask")
      .category("latent/inpaint")
      .input("samples", "LATENT")
      .input("mask", "MASK")
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent s = latent_in(in, "samples");
          const at::Tensor& mask = tensor_of(in["mask"], "MASK");
          if (mask.dim() < 2) throw ComfyError("IndexError", "tuple index out of range");
          s.noise_mask = mask.reshape({-1, 1, mask.size(-2), mask.size(-1)});
          return one(s);
        });
      });
}

NodeDef LatentComposite() {
  return NodeDef("LatentComposite")
      .display_name("Latent Composite")
      .category("latent")
      .input("samples_to", "LATENT")
      .input("samples_from", "LATENT")
      .input("x", "INT", int_opts(0, 0, kMaxResolution, 8))
      .input("y", "INT", int_opts(0, 0, kMaxResolution, 8))
      .input("feather", "INT", int_opts(0, 0, kMaxResolution, 8))
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          const Latent& to_l = latent_in(in, "samples_to");
          Latent out = to_l;
          const int64_t x = floor_div(in.get_int("x"), 8), y = floor_div(in.get_int("y"), 8);
          const int64_t feather = floor_div(in.get_int("feather"), 8);
          at::Tensor s = to_l.samples.clone();
          const at::Tensor& to = to_l.samples;
          at::Tensor from = latent_in(in, "samples_from").samples;
          const int64_t fh = from.size(2), fw = from.size(3);
          at::Tensor target = s.slice(2, y, y + fh).slice(3, x, x + fw);
          from = from.slice(2, 0, to.size(2) - y).slice(3, 0, to.size(3) - x);
          if (feather == 0) {
            target.copy_(from);
          } else {
            at::Tensor mask = at::ones_like(from);
            const int64_t mh = mask.size(2), mw = mask.size(3);
            for (int64_t t = 0; t < feather; ++t) {
              double a = (1.0 / feather) * (t + 1);
              if (y != 0) mask.slice(2, t, 1 + t).mul_(a);
              if (y + from.size(2) < to.size(2)) mask.slice(2, mh - 1 - t, mh - t).mul_(a);
              if (x != 0) mask.slice(3, t, 1 + t).mul_(a);
              if (x + from.size(3) < to.size(3)) mask.slice(3, mw - 1 - t, mw - t).mul_(a);
            }
            at::Tensor rev = at::ones_like(mask) - mask;
            target.copy_(from * mask + target * rev);
          }
          out.samples = s;
          return one(out);
        });
      });
}

NodeDef LatentBlend() {
  return NodeDef("LatentBlend")
      .display_name("Latent Blend")
      .category("_for_testing")
      .input("samples1", "LATENT")
      .input("samples2", "LATENT")
      .input("blend_factor", "FLOAT", {{"default", 0.5}, {"min", 0}, {"max", 1}, {"step", 0.01}})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent out = latent_in(in, "samples1");
          const at::Tensor s1 = out.samples;
          at::Tensor s2 = latent_in(in, "samples2").samples;
          if (s1.sizes() != s2.sizes()) s2 = common_upscale(s2, s1.size(3), s1.size(2), "bicubic", "center");
          const double f = in.get_float("blend_factor");
          out.samples = s1 * f + s2 * (1 - f);  // blend mode "normal": the blended value is samples2
          return one(out);
        });
      });
}

NodeDef LatentRotate() {
  return NodeDef("LatentRotate")
      .display_name("Rotate Latent")
      .category("latent/transform")
      .input("samples", "LATENT")
      .combo("rotation", std::vector<std::string>{"none", "90 degrees", "180 degrees", "270 degrees"})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent s = latent_in(in, "samples");
          const std::string& r = in.get_string("rotation");
          int64_t k = r.rfind("90", 0) == 0 ? 1 : r.rfind("180", 0) == 0 ? 2 : r.rfind("270", 0) == 0 ? 3 : 0;
          s.samples = at::rot90(s.samples, k, {3, 2});
          return one(s);
        });
      });
}

NodeDef LatentFlip() {
  return NodeDef("LatentFlip")
      .display_name("Flip Latent")
      .category("latent/transform")
      .input("samples", "LATENT")
      .combo("flip_method", std::vector<std::string>{"x-axis: vertically", "y-axis: horizontally"})
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent s = latent_in(in, "samples");
          const std::string& m = in.get_string("flip_method");
          if (!m.empty() && m[0] == 'x') s.samples = at::flip(s.samples, {2});
          else if (!m.empty() && m[0] == 'y') s.samples = at::flip(s.samples, {3});
          return one(s);
        });
      });
}

NodeDef LatentCrop() {
  return NodeDef("LatentCrop")
      .display_name("Crop Latent")
      .category("latent/transform")
      .input("samples", "LATENT")
      .input("width", "INT", int_opts(512, 64, kMaxResolution, 8))
      .input("height", "INT", int_opts(512, 64, kMaxResolution, 8))
      .input("x", "INT", int_opts(0, 0, kMaxResolution, 8))
      .input("y", "INT", int_opts(0, 0, kMaxResolution, 8))
      .output("LATENT")
      .run([](ExecutionContext&, const NodeInputs& in) {
        return torch_guarded([&] {
          Latent s = latent_in(in, "samples");
          const at::Tensor& samples = s.samples;
          int64_t x = floor_div(in.get_int("x"), 8), y = floor_div(in.get_int("y"), 8);
          // ComfyUI keeps at least 8 latent pixels (64 px) from the crop origin to the edge.
          if (x > samples.size(3) - 8) x = samples.size(3) - 8;
          if (y > samples.size(2) - 8) y = samples.size(2) - 8;
          int64_t to_x = floor_div(in.get_int("width"), 8) + x, to_y = floor_div(in.get_int("height"), 8) + y;
          s.samples = samples.slice(2, y, to_y).slice(3, x, to_x);
          return one(s);
        });
      });
}

// ---- SaveLatent / LoadLatent ----

NodeDef SaveLatent() {
  return NodeDef("SaveLatent")
      .display_name("SaveLatent")
      .category("_for_testing")
      .input("samples", "LATENT")
      .input("filename_prefix", "STRING", {{"default", "latents/ComfyUI"}})
      .hidden_input("prompt", "PROMPT")
      .hidden_input("extra_pnginfo", "EXTRA_PNGINFO")
      .output_node()
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        const Services& s = ctx.services();
        const FolderPaths& f = folders(s);
        FolderPaths::SavePath p = f.get_save_image_path(in.get_string("filename_prefix"), f.output_directory());
        // Metadata for latent sharing: "prompt" is always there ("" without a prompt), then
        // every extra_pnginfo key, each as json.dumps writes it.
        json metadata;
        if (!s.options.disable_metadata) {
          metadata = json::object();
          const Value& prompt = in["prompt"];
          metadata["prompt"] = prompt.is_none() || prompt.is_object() ? std::string() : python_json_dumps(prompt.data());
          const Value& extra = in["extra_pnginfo"];
          if (!extra.is_object() && extra.data().is_object())
            for (auto& [k, v] : extra.data().items()) metadata[k] = python_json_dumps(v);
        }
        char counter[16];
        std::snprintf(counter, sizeof counter, "%05d", p.counter);
        std::string file = p.filename + "_" + counter + "_.latent";
        save_safetensors(p.full_output_folder / file,
                         {{"latent_tensor", latent_in(in, "samples").samples.contiguous()},
                          {"latent_format_version_0", at::empty({0}, at::kFloat)}},
                         metadata);
        return NodeOutput({}, json{{"latents", json::array({saved_result(file, p.subfolder, "output")})}});
      });
}

std::vector<std::string> latent_files(const Services& s) {
  std::vector<std::string> out;
  if (!s.folders) return out;
  for (const std::string& f : s.folders->list_input_files())
    if (f.size() >= 7 && f.compare(f.size() - 7, 7, ".latent") == 0) out.push_back(f);
  return out;
}

json file_sha256(const Services& s, const NodeInputs& in) {
  try {
    return io::sha256_file_hex(folders(s).get_annotated_filepath(in.get_string("latent")));
  } catch (const std::exception&) {
    return json(std::nan(""));  // an IS_CHANGED that raises means "always changed"
  }
}

NodeDef LoadLatent() {
  NodeDef def("LoadLatent");
  def.display_name("LoadLatent").category("_for_testing");
  def.combo("latent", latent_files);
  def.required.back().folder = "input";
  return def.output("LATENT")
      .fingerprint(file_sha256)
      .validator(
          [](const Services& s, const NodeInputs& in, const std::map<std::string, std::string>&)
              -> std::variant<bool, std::string> {
            const std::string& name = in.get_string("latent");
            if (!s.folders || !s.folders->exists_annotated_filepath(name)) return "Invalid latent file: " + name;
            return true;
          },
          {"latent"})
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        c10::InferenceMode guard;
        auto file = SafetensorsFile::open(folders(ctx.services()).get_annotated_filepath(in.get_string("latent")));
        if (!file->contains("latent_tensor"))
          throw ComfyError("KeyError", "'latent_tensor' (not a SaveLatent file: " + in.get_string("latent") + ")");
        // Files from before latent_format_version_0 stored scaled latents.
        double multiplier = file->contains("latent_format_version_0") ? 1.0 : 1.0 / 0.18215;
        at::Tensor t = file->tensor("latent_tensor");
        if (is_fp8_dtype(file->info("latent_tensor").dtype)) t = fp8_to_float32(t, file->info("latent_tensor").dtype);
        Latent l;
        l.samples = t.to(at::kFloat) * multiplier;
        return one(std::move(l));
      });
}

}  // namespace

// nodes_latent.py (LatentAdd & co.) and LatentCompositeMasked: latent_extras.cpp.
void register_latent_extras(Registry& r);

void register_latent(Registry& r) {
  r.add(EmptyLatentImage());
  r.add(LatentUpscale());
  r.add(LatentUpscaleBy());
  r.add(LatentFromBatch());
  r.add(RepeatLatentBatch());
  r.add(SetLatentNoiseMask());
  r.add(LatentComposite());
  r.add(LatentBlend());
  r.add(LatentRotate());
  r.add(LatentFlip());
  r.add(LatentCrop());
  r.add(LoadLatent());
  r.add(SaveLatent());
  register_latent_extras(r);
}

}  // namespace comfy
