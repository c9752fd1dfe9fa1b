// `comfycpp models list|info|hash|convert` (see models.h). Reads headers and shapes only: a
// safetensors file is mapped, never read whole; a pickle goes through the restricted unpickler.
#include "cli/models.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "cli/app.h"
#include "cli/models_download.h"
#include "core/error.h"
#include "core/json.h"
#include "io/blake3.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "models/model_detection.h"
#include "models/weights.h"
#include "store/hash_cache.h"

namespace comfy {

namespace {

namespace fs = std::filesystem;

struct ModelsArgs {
  DirectoryArgs dirs;
  std::string target;  // FOLDER for list, FILE for the others
  bool json_output = false;
  bool blake3 = false;
  bool no_hash = false;
  bool force = false;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

// FILE as a path, else FOLDER/NAME as a loader names it.
fs::path resolve_model_file(const FolderPaths& folders, const std::string& arg) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) return fs::absolute(arg).lexically_normal();
  const auto slash = arg.find('/');
  if (slash != std::string::npos) {
    const std::string folder = FolderPaths::map_legacy(arg.substr(0, slash));
    if (folders.has_folder(folder)) {
      if (auto p = folders.get_full_path(folder, arg.substr(slash + 1))) return *p;
    }
  }
  throw ComfyError("FileNotFoundError", "no model file '" + arg +
                                            "': it is neither a file nor FOLDER/NAME of a file in the model folders");
}

// The model folder whose search directories hold `file`, or "".
std::string folder_of(const FolderPaths& folders, const fs::path& file) {
  std::error_code ec;
  const fs::path f = fs::weakly_canonical(file, ec);
  for (const std::string& name : folders.folder_names()) {
    for (const fs::path& dir : folders.get_folder_paths(name)) {
      const fs::path d = fs::weakly_canonical(dir, ec);
      const fs::path rel = f.lexically_relative(d);
      if (!rel.empty() && *rel.begin() != "..") return name;
    }
  }
  return "";
}

std::shared_ptr<HashCache> open_hash_cache(const FolderPaths& folders) {
  return std::make_shared<HashCache>(folders.user_directory() / "__comfycpp" / "model_hashes.sqlite");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "F32";
    case at::kDouble: return "F64";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: return std::string(c10::toString(t));
  }
}

// ---------------------------------------------------------------------------------------------
// Detection: family and kind from names and shapes (models/model_detection.h).

const std::map<std::string, std::string>& kind_of_folder() {
  static const std::map<std::string, std::string> k = {
      {"checkpoints", "checkpoint"},       {"diffusion_models", "diffusion model"}, {"vae", "VAE"},
      {"loras", "LoRA"},                   {"controlnet", "ControlNet"},            {"embeddings", "embedding"},
      {"text_encoders", "text encoder"},   {"clip_vision", "CLIP vision"},          {"upscale_models", "upscaler"},
  };
  return k;
}

// "... belongs in models/vae ..." -> "vae".
std::string folder_in_sentence(const std::string& s) {
  const auto at = s.find("models/");
  if (at == std::string::npos) return "";
  std::size_t end = at + 7;
  while (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) || s[end] == '_')) ++end;
  return s.substr(at + 7, end - at - 7);
}

// ComfyUI's supported_models class names for the families the refusal sentences name.
std::string family_in_sentence(const std::string& s) {
  static const std::vector<std::pair<std::string, std::string>> table = {
      {"SDXL refiner", "SDXLRefiner"}, {"SDXL", "SDXL"},           {"Stable Diffusion 3", "SD3"},
      {"Flux", "Flux"},                {"Stable Cascade", "StableCascade"}, {"AuraFlow", "AuraFlow"},
      {"Stable Video Diffusion", "SVD"}, {"unCLIP", "SD21UnclipH"}, {"x4 upscaler", "SD_X4Upscaler"},
  };
  for (const auto& [needle, family] : table)
    if (s.find(needle) != std::string::npos) return family;
  return "";
}

// The family a LoRA was trained for: text-encoder 2 keys (SDXL), transformer block names (Flux,
// SD3), the width of the cross-attention keys (768 SD1.x, 1024 SD2.x, 2048 SDXL), then the
// trainer's metadata.
std::string lora_family(const WeightSet& set, const json& metadata) {
  const std::vector<std::string> keys = set.keys();
  auto any = [&](const std::string& s) {
    return std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.find(s) != std::string::npos; });
  };
  if (any("lora_te2_") || any("lora_te1_")) return "SDXL";
  if (any("double_blocks") || any("single_blocks") || any("single_transformer_blocks")) return "Flux";
  if (any("joint_blocks")) return "SD3";
  for (const std::string& k : keys) {
    if ((k.find("attn2_to_k") != std::string::npos || k.find("attn2.to_k") != std::string::npos) &&
        (k.find("lora_down.weight") != std::string::npos || k.find("lora_A.weight") != std::string::npos)) {
      const auto shape = set.raw(k).sizes();
      if (shape.size() == 2) {
        if (shape[1] == 768) return "SD15";
        if (shape[1] == 1024) return "SD20";
        if (shape[1] == 2048) return "SDXL";
      }
    }
  }
  std::string base;
  if (metadata.is_object()) {
    base = lower(metadata.value("ss_base_model_version", metadata.value("modelspec.architecture", "")));
  }
  if (base.find("xl") != std::string::npos) return "SDXL";
  if (base.find("flux") != std::string::npos) return "Flux";
  if (base.find("sd3") != std::string::npos) return "SD3";
  if (base.find("v2") != std::string::npos) return "SD20";
  if (base.find("v1") != std::string::npos) return "SD15";
  return "";
}

json detect(const std::shared_ptr<const WeightSet>& set, const std::string& file, const json& metadata) {
  json out = {{"family", nullptr}, {"kind", nullptr}, {"folder", nullptr}, {"description", ""}};
  const std::string prefix = unet_prefix_of(*set);
  if (set->has(prefix + "input_blocks.0.0.weight") || !prefix.empty()) {
    out["folder"] = prefix.empty() ? "diffusion_models" : "checkpoints";
    out["kind"] = prefix.empty() ? "diffusion model" : "checkpoint";
    try {
      const ModelDetection d = detect_model(set, prefix, file);
      out["family"] = d.family;
      out["prediction"] = d.prediction == Prediction::V ? "v" : "eps";
      out["inpaint"] = d.inpaint;
      out["description"] = std::string(d.family == "SD15" ? "SD1.x" : "SD2.x") + (d.inpaint ? " inpainting " : " ") +
                           (prefix.empty() ? "diffusion model" : "checkpoint");
    } catch (const ComfyError& e) {
      std::string msg = e.what();
      const auto nl = msg.find('\n');
      std::string what = nl == std::string::npos ? "" : msg.substr(nl + 1);
      if (auto hint = what.find("\nHINT"); hint != std::string::npos) what.resize(hint);
      out["description"] = what;
      const std::string fam = family_in_sentence(what);
      if (!fam.empty()) out["family"] = fam;
      const std::string folder = folder_in_sentence(what);
      if (!folder.empty()) {
        out["folder"] = folder;
        out["kind"] = kind_of_folder().count(folder) ? kind_of_folder().at(folder) : folder;
      }
    }
    return out;
  }
  const std::string what = describe_state_dict(*set);
  out["description"] = what;
  const std::string folder = folder_in_sentence(what);
  if (!folder.empty()) {
    out["folder"] = folder;
    out["kind"] = kind_of_folder().count(folder) ? kind_of_folder().at(folder) : folder;
  }
  const std::string fam = folder == "loras" ? lora_family(*set, metadata) : family_in_sentence(what);
  if (!fam.empty()) out["family"] = fam;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Inspection.

struct Inspected {
  json info;
  std::shared_ptr<const WeightSet> set;
};

Inspected inspect(const fs::path& file) {
  Inspected r;
  json& j = r.info;
  j["path"] = file.string();
  j["size"] = fs::file_size(file);
  std::map<std::string, int64_t> dtypes;
  int64_t params = 0;
  const std::string ext = lower(file.extension().string());
  if (ext == ".gguf") {
    throw ComfyError("RuntimeError", "cannot inspect " + file.string() + ": GGUF files are not read yet");
  }
  if (io::is_pickle_extension(file)) {
    io::PickleCheckpoint ck = io::load_pickle_checkpoint(file);
    j["format"] = "pickle (" + ck.format + ")";
    j["metadata"] = ck.extra;
    std::unordered_map<std::string, at::Tensor> tensors;
    for (auto& [name, t] : ck.tensors) {
      dtypes[dtype_name(t.scalar_type())]++;
      params += t.numel();
      tensors.emplace(name, t);
    }
    j["tensors"] = ck.tensors.size();
    r.set = WeightSet::from_tensors(std::move(tensors));
  } else {
    std::shared_ptr<const SafetensorsFile> f = SafetensorsFile::open(file);
    j["format"] = "safetensors";
    j["metadata"] = f->metadata();
    for (const std::string& k : f->keys()) {
      const TensorInfo& info = f->info(k);
      dtypes[info.dtype]++;
      int64_t n = 1;
      for (int64_t d : info.shape) n *= d;
      params += n;
    }
    j["tensors"] = f->keys().size();
    r.set = WeightSet::from_file(f);
  }
  j["parameters"] = params;
  j["dtypes"] = dtypes;
  return r;
}

struct Hashes {
  std::string digest;
  bool cached = false;
};

Hashes hash_file(const FolderPaths& folders, const fs::path& file, const std::string& algo) {
  Hashes h;
  auto compute = [&](const fs::path& p) { return algo == "blake3" ? io::blake3_file_hex(p) : io::sha256_file_hex(p); };
  try {
    h.digest = open_hash_cache(folders)->digest(file, algo, compute, &h.cached);
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const ComfyError*>(&e)) throw;
    spdlog::warn("hash cache unavailable ({}); hashing without it", e.what());
    h.digest = compute(file);
  }
  return h;
}

std::string one_line(const json& v, std::size_t max) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  std::replace(s.begin(), s.end(), '\n', ' ');
  if (s.size() > max) s = s.substr(0, max) + "... (" + std::to_string(s.size()) + " characters)";
  return s;
}

// ---------------------------------------------------------------------------------------------
// The commands.

int list_command(const ModelsArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  std::vector<std::string> names;
  if (!a.target.empty()) {
    const std::string folder = FolderPaths::map_legacy(a.target);
    if (!folders->has_folder(folder)) {
      throw ComfyError("KeyError", "unknown model folder '" + a.target + "' (known: models/<" +
                                       [&] {
                                         std::string all;
                                         for (const auto& n : folders->folder_names()) all += (all.empty() ? "" : "|") + n;
                                         return all;
                                       }() + ">)");
    }
    names.push_back(folder);
  } else {
    for (const std::string& n : folders->folder_names())
      if (n != "custom_nodes" && n != "configs" && n != "diffusers") names.push_back(n);
  }
  json out = json::object();
  for (const std::string& folder : names) {
    json files = json::array();
    for (const std::string& name : folders->get_filename_list(folder)) {
      auto p = folders->get_full_path(folder, name);
      std::error_code ec;
      const uint64_t size = p ? fs::file_size(*p, ec) : 0;
      files.push_back({{"name", name}, {"path", p ? p->string() : ""}, {"size", ec ? 0 : size}});
    }
    out[folder] = files;
  }
  if (a.json_output) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  bool any = false;
  for (const auto& [folder, files] : out.items()) {
    for (const json& f : files) {
      std::cout << folder << "/" << f["name"].get<std::string>() << "  " << human_size(f["size"].get<uint64_t>()) << "\n";
      any = true;
    }
  }
  if (!any) std::cout << "no model files under " << folders->models_directory().string() << "\n";
  return 0;
}

int info_command(const ModelsArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  const fs::path file = resolve_model_file(*folders, a.target);
  Inspected ins = inspect(file);
  json& j = ins.info;
  j["detected"] = detect(ins.set, file.string(), j["metadata"]);
  const std::string in_folder = folder_of(*folders, file);
  j["in_folder"] = in_folder.empty() ? json(nullptr) : json(in_folder);
  j["hint"] = nullptr;
  const json& belongs = j["detected"]["folder"];
  if (belongs.is_string() && !in_folder.empty() && belongs.get<std::string>() != in_folder) {
    const std::string kind = j["detected"]["kind"].is_string() ? j["detected"]["kind"].get<std::string>() : "model";
    j["hint"] = "this is a " + kind + "; it belongs in models/" + belongs.get<std::string>() + ", not models/" + in_folder;
  }
  if (!a.no_hash) {
    Hashes h = hash_file(*folders, file, "sha256");
    j["sha256"] = h.digest;
    j["autov2"] = h.digest.substr(0, 10);
  }
  if (a.json_output) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "file:        " << file.string() << "\n";
  std::cout << "size:        " << human_size(j["size"].get<uint64_t>()) << " (" << j["size"].get<uint64_t>() << " bytes)\n";
  std::cout << "format:      " << j["format"].get<std::string>() << "\n";
  std::string dt;
  for (const auto& [k, v] : j["dtypes"].items()) dt += (dt.empty() ? "" : ", ") + k + " x" + std::to_string(v.get<int64_t>());
  std::cout << "tensors:     " << j["tensors"].get<uint64_t>() << " (" << dt << "), " << j["parameters"].get<int64_t>()
            << " parameters\n";
  const json& d = j["detected"];
  std::cout << "kind:        " << (d["kind"].is_string() ? d["kind"].get<std::string>() : "unknown");
  if (d["family"].is_string()) std::cout << " (" << d["family"].get<std::string>() << ")";
  std::cout << "\n";
  if (!d["description"].get<std::string>().empty()) std::cout << "detected:    " << d["description"].get<std::string>() << "\n";
  if (d["folder"].is_string()) std::cout << "folder:      models/" << d["folder"].get<std::string>() << "\n";
  if (j["hint"].is_string()) std::cout << "HINT:        " << j["hint"].get<std::string>() << "\n";
  if (j.contains("sha256")) {
    std::cout << "sha256:      " << j["sha256"].get<std::string>() << "\n";
    std::cout << "AutoV2:      " << j["autov2"].get<std::string>() << "\n";
  }
  if (!j["metadata"].empty()) {
    std::cout << "metadata:\n";
    for (const auto& [k, v] : j["metadata"].items()) std::cout << "  " << k << ": " << one_line(v, 160) << "\n";
  }
  return 0;
}

int hash_command(const ModelsArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  const fs::path file = resolve_model_file(*folders, a.target);
  const std::string algo = a.blake3 ? "blake3" : "sha256";
  Hashes h = hash_file(*folders, file, algo);
  if (a.json_output) {
    json j = {{"path", file.string()}, {"size", fs::file_size(file)}, {algo, h.digest}, {"cached", h.cached}};
    if (algo == "sha256") j["autov2"] = h.digest.substr(0, 10);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << h.digest << "  " << file.string() << "\n";
  if (algo == "sha256") std::cout << "AutoV2: " << h.digest.substr(0, 10) << "\n";
  return 0;
}

int convert_command(const ModelsArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  const fs::path file = resolve_model_file(*folders, a.target);
  if (!io::is_pickle_extension(file)) {
    throw ComfyError("ValueError", "cannot convert " + file.string() +
                                       ": only pickle checkpoints (.ckpt, .pt, .pth, .bin, .pkl) are converted");
  }
  fs::path target = file;
  target.replace_extension(".safetensors");
  if (fs::exists(target) && !a.force) {
    throw ComfyError("FileExistsError", "not converting " + file.string() + ": " + target.string() +
                                            " already exists (--force replaces it)");
  }
  io::PickleCheckpoint ck = io::load_pickle_checkpoint(file);
  if (ck.tensors.empty()) throw ComfyError("ValueError", "cannot convert " + file.string() + ": it holds no tensor");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, t] : ck.tensors) tensors.emplace_back(name, t.contiguous());
  json metadata = json::object();
  for (const auto& [k, v] : ck.extra.items()) metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
  metadata["format"] = "pt";  // what safetensors' own converters write for torch weights
  save_safetensors(target, tensors, metadata);  // atomic: a temporary file, fsync, rename
  if (a.json_output) {
    std::cout << json{{"source", file.string()}, {"path", target.string()}, {"tensors", tensors.size()},
                      {"size", fs::file_size(target)}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "wrote " << target.string() << " (" << tensors.size() << " tensors, "
              << human_size(fs::file_size(target)) << ")\n";
  }
  return 0;
}

}  // namespace

CLI::App* add_models_command(CLI::App& app, int* exit_code) {
  CLI::App* models = app.add_subcommand("models", "Inspect, hash and convert model files.");
  models->require_subcommand(1);
  auto add = [&](const char* name, const char* help, int (*run)(const ModelsArgs&), const char* target_help,
                 bool target_required) {
    auto args = std::make_shared<ModelsArgs>();
    CLI::App* sub = models->add_subcommand(name, help);
    auto* opt = sub->add_option(std::string(target_required ? "file" : "folder"), args->target, target_help);
    if (target_required) opt->required();
    sub->add_flag("--json", args->json_output, "Print JSON on stdout.");
    args->dirs.add_to(*sub);
    sub->callback([args, exit_code, run, name] {
      spdlog::set_default_logger(spdlog::stderr_logger_mt("comfycpp-models"));
      spdlog::set_pattern("%v");
      spdlog::set_level(args->dirs.log_level(spdlog::level::warn));
      try {
        c10::InferenceMode guard;
        *exit_code = run(*args);
      } catch (const std::exception& e) {
        const auto* ce = dynamic_cast<const ComfyError*>(&e);
        if (args->json_output) {
          std::cout << json{{"error", {{"type", ce ? ce->type() : "Exception"}, {"message", e.what()}}}}.dump(2) << "\n";
        }
        std::cerr << "models " << name << ": " << e.what() << "\n";
        *exit_code = 1;
      }
    });
    return std::make_pair(sub, args);
  };
  add("list", "List the model files of every folder, or of FOLDER.", list_command,
      "a model folder: checkpoints, loras, vae, ...", false);
  auto info = add("info", "Header, metadata, detected family and kind, folder hint, SHA-256 of a model file.",
                  info_command, "a path, or FOLDER/NAME as loaders name it", true);
  info.first->add_flag("--no-hash", info.second->no_hash, "Skip the SHA-256 (computed once, then cached).");
  auto hash = add("hash", "SHA-256 (and AutoV2) of a model file, cached by path, size and mtime.", hash_command,
                  "a path, or FOLDER/NAME as loaders name it", true);
  hash.first->add_flag("--blake3", hash.second->blake3, "BLAKE3 instead of SHA-256.");
  auto convert = add("convert", "Convert a pickle checkpoint (.ckpt/.pt/.pth/.bin) to .safetensors beside it.",
                     convert_command, "a path, or FOLDER/NAME as loaders name it", true);
  convert.first->add_flag("--force", convert.second->force, "Replace an existing .safetensors file.");
  add_download_commands(*models, exit_code);  // download, missing (cli/models_download.cpp)
  return models;
}

}  // namespace comfy
