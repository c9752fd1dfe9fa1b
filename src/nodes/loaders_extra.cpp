// The "advanced/loaders" of nodes.py: CheckpointLoader (the deprecated one with a config file),
// UNETLoader (with weight_dtype), CLIPLoader and DualCLIPLoader.
//
// CLIPLoader builds the text encoders we have: SD1.x's CLIP-L and SD2.x's OpenCLIP-H, from the
// file layouts ComfyUI accepts (models/clip_file.h). The other families of its type list, and
// every pair DualCLIPLoader can build, are refused with a message naming the family.
#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>

#include "graph/execution_context.h"
#include "models/checkpoint.h"
#include "models/clip_file.h"
#include "nodes/all.h"
#include "nodes/node_common.h"

namespace comfy {
namespace {

std::vector<std::filesystem::path> embedding_dirs(const Services& s) {
  if (!s.folders) return {};
  return s.folders->get_folder_paths("embeddings");
}

Value object_value(std::shared_ptr<const Object> o) { return Value(std::move(o)); }

// ---- CheckpointLoader ----

// comfy/sd.py load_checkpoint: the checkpoint loaded as CheckpointLoaderSimple loads it, then
// the config's model.params.parameterization "v" makes the model v-prediction and its
// cond_stage_config.params.layer_idx sets the CLIP's layer.
NodeDef CheckpointLoader() {
  return NodeDef("CheckpointLoader")
      .display_name("Load Checkpoint With Config (DEPRECATED)")
      .category("advanced/loaders")
      .deprecated()
      .model_combo("config_name", "configs")
      .model_combo("ckpt_name", "checkpoints")
      .output("MODEL")
      .output("CLIP")
      .output("VAE")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const Services& s = ctx.services();
        const FolderPaths& f = folders(s);
        const std::string& config_name = in.get_string("config_name");
        std::optional<std::filesystem::path> config_path = f.get_full_path("configs", config_name);
        std::filesystem::path ckpt_path = f.get_full_path_or_raise("checkpoints", in.get_string("ckpt_name"));
        spdlog::warn(
            "Warning: The load checkpoint with config function is deprecated and will eventually be removed, please "
            "use the other one.");
        c10::InferenceMode guard;
        CheckpointOptions options;
        options.embedding_directories = embedding_dirs(s);
        LoadedCheckpoint ckpt = load_checkpoint(ckpt_path, options);
        if (!config_path)
          throw ComfyError("FileNotFoundError", "config file '" + config_name + "' not found in models/configs");
        YAML::Node config;
        try {
          config = YAML::LoadFile(config_path->string());
        } catch (const YAML::Exception& e) {
          throw ComfyError("ValueError", "cannot read config " + config_path->string() + ": " + e.what());
        }
        YAML::Node params = config["model"] ? config["model"]["params"] : YAML::Node();
        if (!params || !params.IsMap())
          throw ComfyError("KeyError", "'model' / 'params' missing in config " + config_path->string());
        std::shared_ptr<const DiffusionModel> model = ckpt.model;
        if (params["parameterization"] && params["parameterization"].as<std::string>("") == "v") {
          auto m = std::make_shared<DiffusionModel>(*model);
          m->sampling = ModelSampling::discrete(Prediction::V);
          model = m;
        }
        if (!params["cond_stage_config"])
          throw ComfyError("KeyError", "'cond_stage_config' missing in config " + config_path->string());
        YAML::Node layer = params["cond_stage_config"]["params"] ? params["cond_stage_config"]["params"]["layer_idx"]
                                                                 : YAML::Node();
        std::shared_ptr<const ClipModel> clip = ckpt.clip;
        if (layer && !layer.IsNull() && clip) clip = clip->with_layer_idx(layer.as<int>());
        return NodeOutput({object_value(model), object_value(clip), object_value(ckpt.vae)});
      });
}

// ---- UNETLoader ----

// Rounds f32 values to the nearest fp8 value (round half to even), as torch converts to
// float8_e4m3fn (max 448; what rounds beyond it is NaN) or float8_e5m2 (max 57344; beyond is
// inf). The result stays f32: libtorch 1.13 has no fp8 dtype, and every fp8 value is exact in f16
// and f32.
at::Tensor round_to_fp8(const at::Tensor& x, bool e4m3) {
  const int64_t mantissa_bits = e4m3 ? 3 : 2;
  const double min_exponent = e4m3 ? -6 : -14;
  const double max_value = e4m3 ? 448.0 : 57344.0;
  at::Tensor a = x.abs();
  at::Tensor exponent = std::get<1>(at::frexp(a)).to(at::kFloat) - 1;  // floor(log2|x|) for x != 0
  at::Tensor quantum = at::exp2(at::clamp_min(exponent, min_exponent) - static_cast<double>(mantissa_bits));
  at::Tensor r = at::round(x / quantum) * quantum;
  at::Tensor over = r.abs() > max_value;
  at::Tensor overflow = e4m3 ? at::full_like(r, std::numeric_limits<float>::quiet_NaN())
                             : at::sign(x) * std::numeric_limits<float>::infinity();
  r = at::where(over, overflow, r);
  return at::where(at::isnan(x), x, r);
}

NodeDef UNETLoader() {
  return NodeDef("UNETLoader")
      .display_name("Load Diffusion Model")
      .category("advanced/loaders")
      .model_combo("unet_name", "diffusion_models")
      .combo("weight_dtype", std::vector<std::string>{"default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"})
      .output("MODEL")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const FolderPaths& f = folders(ctx.services());
        std::filesystem::path path = f.get_full_path_or_raise("diffusion_models", in.get_string("unet_name"));
        const std::string& weight_dtype = in.get_string("weight_dtype");
        c10::InferenceMode guard;
        std::shared_ptr<const DiffusionModel> model = load_diffusion_model(path);
        if (weight_dtype != "default") {
          // The weights are held in fp8 (and computed in f32 on the CPU): each floating weight is
          // rounded to fp8, lazily, before any LoRA or merge patch. fp8_e4m3fn_fast only differs
          // on GPUs with fp8 matrix products.
          const bool e4m3 = weight_dtype != "fp8_e5m2";
          std::map<std::string, std::vector<WeightPatch>> patches;
          for (const std::string& k : model->weights.keys()) {
            const std::string key = model->weights.prefix + k;
            if (!at::isFloatingType(model->weights.set->raw(key).scalar_type())) continue;
            patches[key].push_back(WeightPatch{[e4m3](at::Tensor w) { return round_to_fp8(w, e4m3); }});
          }
          model = model->with_weights(Weights(model->weights.set->with_patches(std::move(patches)), model->weights.prefix));
        }
        return NodeOutput({object_value(model)});
      });
}

// ---- CLIPLoader / DualCLIPLoader ----

const std::vector<std::string>& clip_types() {
  static const std::vector<std::string> v{"stable_diffusion", "stable_cascade", "sd3",   "stable_audio", "mochi",
                                          "ltxv",             "pixart",         "cosmos", "lumina2",     "wan",
                                          "hidream",          "chroma",         "ace",   "omnigen2",     "qwen_image",
                                          "hunyuan_image",    "flux2",          "ovis"};
  return v;
}

const std::vector<std::string>& dual_clip_types() {
  static const std::vector<std::string> v{"sdxl",          "sd3",              "flux",       "hunyuan_video",
                                          "hidream",       "hunyuan_image",    "hunyuan_video_15", "kandinsky5",
                                          "kandinsky5_image", "ltxv",          "newbie"};
  return v;
}

std::vector<std::string> device_options(const Services&) { return {"default", "cpu"}; }

TextEncoderFile read_clip_file(const std::filesystem::path& path) {
  return read_text_encoder(load_weight_file(path));
}

NodeDef CLIPLoader() {
  return NodeDef("CLIPLoader")
      .display_name("Load CLIP")
      .category("advanced/loaders")
      .description(
          "[Recipes]\n\nstable_diffusion: clip-l\nstable_cascade: clip-g\nsd3: t5 xxl/ clip-g / clip-l\nstable_audio: "
          "t5 base\nmochi: t5 xxl\ncosmos: old t5 xxl\nlumina2: gemma 2 2B\nwan: umt5 xxl\n hidream: llama-3.1 "
          "(Recommend) or t5\nomnigen2: qwen vl 2.5 3B")
      .model_combo("clip_name", "text_encoders")
      .combo("type", clip_types())
      .optional_combo("device", device_options, {{"advanced", true}})
      .output("CLIP")
      .run([](ExecutionContext& ctx, const NodeInputs& in) {
        const Services& s = ctx.services();
        std::filesystem::path path = folders(s).get_full_path_or_raise("text_encoders", in.get_string("clip_name"));
        const std::string& type = in.get_string("type");
        c10::InferenceMode guard;
        TextEncoderFile file = read_clip_file(path);
        // comfy/sd.py load_text_encoder_state_dicts with one file: a CLIP-H file is SD2's encoder
        // whatever the type; a CLIP-L file is SD1's, except for sd3 and hidream, which build their
        // own multi-encoder models around it.
        if (file.kind == TextEncoderKind::ClipL && (type == "sd3" || type == "hidream"))
          throw ComfyError("ValueError", "CLIPLoader: a CLIP-L file with type '" + type + "' builds the " +
                                             (type == "sd3" ? std::string("SD3") : std::string("HiDream")) +
                                             " text encoder, which is not supported yet (" + path.string() + ")");
        ClipLoadOptions options;
        options.embedding_directories = embedding_dirs(s);
        return NodeOutput({object_value(make_clip_from_file(file, path, options))});
      });
}

NodeDef DualCLIPLoader() {
  return NodeDef("DualCLIPLoader")
      .display_name("DualCLIPLoader")
      .category("advanced/loaders")
      .description(
          "[Recipes]\n\nsdxl: clip-l, clip-g\nsd3: clip-l, clip-g / clip-l, t5 / clip-g, t5\nflux: clip-l, "
          "t5\nhidream: at least one of t5 or llama, recommended t5 and llama\nhunyuan_image: qwen2.5vl 7b and byt5 "
          "small\nnewbie: gemma-3-4b-it, jina clip v2")
      .model_combo("clip_name1", "text_encoders")
      .model_combo("clip_name2", "text_encoders")
      .combo("type", dual_clip_types())
      .optional_combo("device", device_options, {{"advanced", true}})
      .output("CLIP")
      .run([](ExecutionContext& ctx, const NodeInputs& in) -> NodeOutput {
        const FolderPaths& f = folders(ctx.services());
        std::filesystem::path p1 = f.get_full_path_or_raise("text_encoders", in.get_string("clip_name1"));
        std::filesystem::path p2 = f.get_full_path_or_raise("text_encoders", in.get_string("clip_name2"));
        const std::string& type = in.get_string("type");
        c10::InferenceMode guard;
        TextEncoderFile a = read_clip_file(p1), b = read_clip_file(p2);
        for (const auto& [file, path] : {std::pair(&a, &p1), std::pair(&b, &p2)})
          if (file->kind == TextEncoderKind::Other)
            throw ComfyError("ValueError", "cannot load " + path->string() + " as a text encoder: it looks like " + file->what);
        // Every pair builds a multi-encoder model (SDXL's CLIP-L + CLIP-G, SD3, Flux's CLIP-L + T5,
        // ...); none of them is here yet.
        throw ComfyError("ValueError", "DualCLIPLoader: type '" + type + "' (" + a.what + " + " + b.what +
                                           ") builds a text encoder that is not supported yet; only SD1.x and "
                                           "SD2.x text encoders are (CLIPLoader, type stable_diffusion)");
      });
}

}  // namespace

void register_loaders_extra(Registry& r) {
  r.add(CheckpointLoader());
  r.add(UNETLoader());
  r.add(CLIPLoader());
  r.add(DualCLIPLoader());
}

}  // namespace comfy
