// `comfycpp models list|info|hash|convert` (see models.h). Reads headers and shapes only: a
// safetensors or GGUF file is mapped, never read whole; a pickle goes through the restricted
// unpickler. verify and dedupe live in models_verify.cpp.
#include "cli/models.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "core/text.h"
#include "cli/app.h"
#include "cli/models_catalog.h"
#include "cli/models_download.h"
#include "cli/models_verify.h"
#include "core/error.h"
#include "core/json.h"
#include "io/blake3.h"
#include "io/gguf.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "io/tensor_hash.h"
#include "models/model_detection.h"
#include "models/model_inspection.h"
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
  bool tensors = false;  // the tensor-data hash (io/tensor_hash.h)
};

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

json detect(const std::shared_ptr<const WeightSet>& set, const std::string& file, const json& metadata,
           const std::vector<TensorEntry>& tensors) {
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
        out["kind"] = kind_of_folder(folder);
      }
    }
    return out;
  }
  const std::string what = describe_state_dict(*set);
  out["description"] = what;
  const std::string folder = folder_in_sentence(what);
  if (!folder.empty()) {
    out["folder"] = folder;
    out["kind"] = kind_of_folder(folder);
  }
  const std::string fam = folder == "loras" ? lora_family(tensors, metadata).family : family_in_sentence(what);
  if (!fam.empty()) out["family"] = fam;
  return out;
}

// What the names and shapes did not settle, from the GGUF header: ComfyUI-GGUF's architecture
// strings (general.architecture) and where it loads each kind (unet/diffusion_models with
// UnetLoaderGGUF, clip/text_encoders with CLIPLoaderGGUF).
void gguf_detection(json& j) {
  json& d = j["detected"];
  const json& arch = j["metadata"].value("general.architecture", json());
  if (!arch.is_string()) return;
  static const std::map<std::string, std::pair<std::string, bool>> table = {
      // arch -> (family, is a diffusion model); anything else named here is a text encoder
      {"sd1", {"SD15", true}},       {"sd2", {"SD20", true}},        {"sdxl", {"SDXL", true}},
      {"sd3", {"SD3", true}},        {"flux", {"Flux", true}},       {"aura", {"AuraFlow", true}},
      {"ltxv", {"LTXV", true}},      {"hyvid", {"HunyuanVideo", true}}, {"wan", {"WAN21", true}},
      {"hidream", {"HiDream", true}}, {"cosmos", {"Cosmos", true}},  {"lumina2", {"Lumina2", true}},
      {"t5", {"", false}},           {"t5encoder", {"", false}},     {"llama", {"", false}},
      {"qwen2vl", {"", false}},      {"gemma2", {"", false}},        {"clip", {"", false}},
  };
  auto it = table.find(arch.get<std::string>());
  if (it == table.end()) return;
  const auto& [family, diffusion] = it->second;
  if (d["family"].is_null() && !family.empty()) d["family"] = family;
  if (d["kind"].is_null()) {
    d["kind"] = diffusion ? "diffusion model" : "text encoder";
    d["folder"] = diffusion ? "diffusion_models" : "text_encoders";
    if (d["description"].get<std::string>().empty()) {
      d["description"] = std::string("A GGUF ") + (diffusion ? "diffusion model" : "text encoder") + " (" +
                         arch.get<std::string>() + "); it belongs in models/" + d["folder"].get<std::string>() +
                         " and loads with ComfyUI-GGUF's " + (diffusion ? "UnetLoaderGGUF" : "CLIPLoaderGGUF") + ".";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Inspection.

struct Inspected {
  json info;
  std::shared_ptr<const WeightSet> set;
  std::vector<TensorEntry> tensors;  // names, dtypes and shapes, for the header rules (models/model_inspection.h)
};

Inspected inspect(const fs::path& file) {
  Inspected r;
  json& j = r.info;
  j["path"] = file.string();
  j["size"] = fs::file_size(file);
  const std::string ext = lower_extension(file);
  if (ext == ".gguf" || io::is_gguf_file(file)) {
    auto g = io::GgufFile::open(file);
    j["format"] = "gguf (version " + std::to_string(g->version()) + ")";
    j["gguf"] = {{"version", g->version()}, {"alignment", g->alignment()}, {"data_offset", g->data_offset()}};
    json metadata = json::object(), types = json::object();
    for (const io::GgufKeyValue& kv : g->key_values()) {
      types[kv.key] = io::gguf_type_name(kv.type, kv.element);
      // Long arrays (tokenizer vocabularies) are summarised, not printed.
      if (kv.value.is_array() && kv.value.size() > 32) {
        metadata[kv.key] = types[kv.key].get<std::string>() + " of " + std::to_string(kv.value.size()) + " items";
      } else {
        metadata[kv.key] = kv.value;
      }
    }
    j["metadata"] = metadata;
    j["gguf"]["types"] = types;
    // Detection sees names and PyTorch-order shapes only: meta tensors, no data.
    std::unordered_map<std::string, at::Tensor> shapes;
    for (const io::GgufTensorInfo& t : g->tensors()) {
      r.tensors.push_back({t.name, t.type_name(), t.shape()});
      shapes.emplace(t.name, at::empty(t.shape(), at::TensorOptions().dtype(at::kFloat).device(at::kMeta)));
    }
    r.set = WeightSet::from_tensors(std::move(shapes));
  } else if (io::is_pickle_extension(file)) {
    io::PickleCheckpoint ck = io::load_pickle_checkpoint(file);
    j["format"] = "pickle (" + ck.format + ")";
    j["metadata"] = ck.extra;
    std::unordered_map<std::string, at::Tensor> tensors;
    for (auto& [name, t] : ck.tensors) {
      r.tensors.push_back({name, dtype_name(t.scalar_type()), t.sizes().vec()});
      tensors.emplace(name, t);
    }
    r.set = WeightSet::from_tensors(std::move(tensors));
  } else {
    std::shared_ptr<const SafetensorsFile> f = SafetensorsFile::open(file);
    j["format"] = "safetensors";
    j["metadata"] = f->metadata();
    for (const std::string& k : f->keys()) r.tensors.push_back({k, f->info(k).dtype, f->info(k).shape});
    r.set = WeightSet::from_file(f);
  }
  const TensorSummary summary = summarize_tensors(r.tensors);
  j["tensors"] = summary.count;
  j["parameters"] = summary.parameters;
  j["dtypes"] = summary.dtypes;
  return r;
}

struct Hashes {
  std::string digest;
  bool cached = false;
};

Hashes hash_file(const FolderPaths& folders, const fs::path& file, const std::string& algo) {
  Hashes h;
  auto compute = [&](const fs::path& p) {
    if (algo == "tensors-sha256") {
      if (io::is_pickle_extension(p) && !io::is_gguf_file(p)) {
        throw ComfyError("ValueError", "no tensor hash for " + p.string() +
                                           ": it is a pickle checkpoint (convert it to safetensors with `models convert`)");
      }
      return io::tensor_data_sha256(p);
    }
    return algo == "blake3" ? io::blake3_file_hex(p) : io::sha256_file_hex(p);
  };
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
    std::vector<std::string> listed = folders->get_filename_list(folder);
    for (const std::string& g : gguf_file_list(*folders, folder)) {  // where ComfyUI-GGUF looks for them
      if (std::find(listed.begin(), listed.end(), g) == listed.end()) listed.push_back(g);
    }
    std::sort(listed.begin(), listed.end());
    for (const std::string& name : listed) {
      auto p = folders->get_full_path(folder, name);
      std::error_code ec;
      const uint64_t size = p ? fs::file_size(*p, ec) : 0;
      json entry = {{"name", name}, {"path", p ? p->string() : ""}, {"size", ec ? 0 : size}};
      if (lower_extension(name) == ".gguf" && p) {
        try {  // a GGUF file's architecture and tensor types, from its header
          auto g = io::GgufFile::open(*p);
          std::map<std::string, int> types;
          for (const auto& t : g->tensors()) types[t.type_name()]++;
          entry["gguf"] = {{"architecture", g->get_string("general.architecture")}, {"tensors", g->tensors().size()},
                           {"types", types}};
        } catch (const ComfyError& e) {
          entry["error"] = e.what();
        }
      }
      files.push_back(std::move(entry));
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
      std::cout << folder << "/" << f["name"].get<std::string>() << "  " << human_size(f["size"].get<uint64_t>());
      if (f.contains("gguf")) {
        std::string types;
        for (const auto& [t, n] : f["gguf"]["types"].items()) types += (types.empty() ? "" : ", ") + t + " x" + std::to_string(n.get<int>());
        std::cout << "  GGUF " << f["gguf"]["architecture"].get<std::string>() << " (" << types << ")";
      }
      if (f.contains("error")) std::cout << "  CORRUPT";
      std::cout << "\n";
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
  try {
    j["detected"] = detect(ins.set, file.string(), j["metadata"], ins.tensors);
  } catch (const std::exception&) {  // a check that needs tensor values (GGUF gives shapes only)
    j["detected"] = {{"family", nullptr}, {"kind", nullptr}, {"folder", nullptr}, {"description", ""}};
  }
  if (j.contains("gguf")) gguf_detection(j);
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
  if (a.tensors) j["tensors_sha256"] = hash_file(*folders, file, "tensors-sha256").digest;
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
  if (j.contains("tensors_sha256")) std::cout << "tensor hash: " << j["tensors_sha256"].get<std::string>() << "\n";
  if (!j["metadata"].empty()) {
    std::cout << "metadata:\n";
    for (const auto& [k, v] : j["metadata"].items()) std::cout << "  " << k << ": " << one_line(v, 160) << "\n";
  }
  return 0;
}

int hash_command(const ModelsArgs& a) {
  auto folders = make_folder_paths(a.dirs);
  const fs::path file = resolve_model_file(*folders, a.target);
  const std::string algo = a.tensors ? "tensors-sha256" : a.blake3 ? "blake3" : "sha256";
  Hashes h = hash_file(*folders, file, algo);
  const std::string key = a.tensors ? "tensors_sha256" : algo;
  if (a.json_output) {
    json j = {{"path", file.string()}, {"size", fs::file_size(file)}, {key, h.digest}, {"cached", h.cached}};
    if (algo == "sha256") j["autov2"] = h.digest.substr(0, 10);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << h.digest << "  " << file.string() << (a.tensors ? "  (tensor data)" : "") << "\n";
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

int run_models_subcommand(const std::string& name, bool json_output, const DirectoryArgs& dirs,
                          const std::function<int()>& run) {
  std::string logger = "comfycpp-models-" + name;
  std::replace(logger.begin(), logger.end(), ' ', '-');
  spdlog::set_default_logger(spdlog::stderr_logger_mt(logger));
  spdlog::set_pattern("%v");
  spdlog::set_level(dirs.log_level(spdlog::level::warn));
  try {
    c10::InferenceMode guard;
    return run();
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const ComfyError*>(&e);
    if (json_output)
      std::cout << json{{"error", {{"type", ce ? ce->type() : "Exception"}, {"message", e.what()}}}}.dump(2) << "\n";
    std::cerr << "models " << name << ": " << e.what() << "\n";
    return 1;
  }
}

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
      *exit_code = run_models_subcommand(name, args->json_output, args->dirs, [&] { return run(*args); });
    });
    return std::make_pair(sub, args);
  };
  add("list", "List the model files of every folder, or of FOLDER.", list_command,
      "a model folder: checkpoints, loras, vae, ...", false);
  auto info = add("info", "Header, metadata, detected family and kind, folder hint, SHA-256 of a model file.",
                  info_command, "a path, or FOLDER/NAME as loaders name it", true);
  info.first->add_flag("--no-hash", info.second->no_hash, "Skip the SHA-256 (computed once, then cached).");
  info.first->add_flag("--tensors", info.second->tensors, "Also the tensor-data hash (ignores metadata and order).");
  auto hash = add("hash", "SHA-256 (and AutoV2) of a model file, cached by path, size and mtime.", hash_command,
                  "a path, or FOLDER/NAME as loaders name it", true);
  hash.first->add_flag("--blake3", hash.second->blake3, "BLAKE3 instead of SHA-256.");
  hash.first->add_flag("--tensors", hash.second->tensors,
                       "SHA-256 of the tensors only (sorted names, dtypes, shapes, bytes): editing metadata keeps it.");
  auto convert = add("convert", "Convert a pickle checkpoint (.ckpt/.pt/.pth/.bin) to .safetensors beside it.",
                     convert_command, "a path, or FOLDER/NAME as loaders name it", true);
  convert.first->add_flag("--force", convert.second->force, "Replace an existing .safetensors file.");
  add_download_commands(*models, exit_code);  // download, missing (cli/models_download.cpp)
  add_catalog_commands(*models, exit_code);  // catalog [search | install] (cli/models_catalog.cpp)
  add_verify_commands(*models, exit_code);    // verify, dedupe (cli/models_verify.cpp)
  return models;
}

}  // namespace comfy
