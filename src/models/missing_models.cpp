// Missing-model resolution (missing_models.h).
#include "models/missing_models.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>

#include "core/text.h"
#include "core/error.h"
#include "graph/ui_workflow.h"
#include "models/model_download.h"

namespace comfy {

namespace fs = std::filesystem;

namespace {

// The last component of a name, with '/' and '\' both separators (workflows saved on Windows).
std::string base_name(const std::string& name) {
  auto pos = name.find_last_of("/\\");
  return pos == std::string::npos ? name : name.substr(pos + 1);
}

// ComfyUI's loader inputs that name a model file, for node types the registry does not know.
std::string folder_for_input(const std::string& class_type, const std::string& input) {
  if (class_type == "UpscaleModelLoader" && input == "model_name") return "upscale_models";
  if (class_type == "CLIPVisionLoader" && input == "clip_name") return "clip_vision";
  static const std::map<std::string, std::string> table = {
      {"ckpt_name", "checkpoints"},        {"lora_name", "loras"},
      {"vae_name", "vae"},                 {"clip_name", "text_encoders"},
      {"clip_name1", "text_encoders"},     {"clip_name2", "text_encoders"},
      {"clip_name3", "text_encoders"},     {"clip_name4", "text_encoders"},
      {"unet_name", "diffusion_models"},   {"control_net_name", "controlnet"},
      {"style_model_name", "style_models"}, {"gligen_name", "gligen"},
      {"hypernetwork_name", "hypernetworks"}, {"photomaker_model_name", "photomaker"},
  };
  auto it = table.find(input);
  return it == table.end() ? "" : it->second;
}

bool is_unsafe_name(const std::string& name) {
  if (name.empty() || name[0] == '/' || name[0] == '\\' || name.find('\0') != std::string::npos) return true;
  if (name.size() > 1 && name[1] == ':') return true;  // C:\...
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find_first_of("/\\", start);
    std::string part = name.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part == "..") return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

struct Collector {
  std::vector<ModelReference> refs;
  std::map<std::pair<std::string, std::string>, size_t> index;

  ModelReference& at(const std::string& folder, const std::string& name) {
    auto key = std::make_pair(folder, name);
    auto it = index.find(key);
    if (it != index.end()) return refs[it->second];
    index[key] = refs.size();
    refs.push_back(ModelReference{folder, name, "", "", "", {}, {}});
    return refs.back();
  }

  void add_node_input(const std::string& node_id, const std::string& input, const std::string& folder,
                      const std::string& name) {
    auto& r = at(folder, name);
    if (std::find(r.nodes.begin(), r.nodes.end(), node_id) == r.nodes.end()) r.nodes.push_back(node_id);
    r.inputs.push_back(node_id + "." + input);
  }

  void add_models_list(const json& models, const std::string& node_id, std::vector<std::string>* warnings) {
    if (!models.is_array()) return;
    for (auto& m : models) {
      if (!m.is_object() || !m.contains("name") || !m["name"].is_string()) {
        if (warnings) warnings->push_back("a `models` entry without a name was ignored");
        continue;
      }
      std::string dir = m.value("directory", "");
      std::string folder = FolderPaths::map_legacy(dir);
      auto& r = at(folder, m["name"].get<std::string>());
      if (r.url.empty() && m.contains("url") && m["url"].is_string()) r.url = m["url"].get<std::string>();
      if (r.hash.empty() && m.contains("hash") && m["hash"].is_string()) {
        r.hash = ascii_lower(m["hash"].get<std::string>());
        r.hash_type = ascii_lower(m.value("hash_type", "sha256"));
      }
      if (!node_id.empty() && std::find(r.nodes.begin(), r.nodes.end(), node_id) == r.nodes.end())
        r.nodes.push_back(node_id);
    }
  }

  void add_prompt(const json& prompt, const Registry* registry) {
    if (!prompt.is_object()) return;
    for (auto& [node_id, node] : prompt.items()) {
      if (!node.is_object() || !node.contains("inputs") || !node["inputs"].is_object()) continue;
      std::string class_type = node.value("class_type", "");
      const NodeDef* def = registry ? registry->find(class_type) : nullptr;
      for (auto& [input, value] : node["inputs"].items()) {
        if (!value.is_string()) continue;
        std::string folder;
        if (def) {
          const InputSpec* spec = def->find_input(input);
          if (spec && !spec->folder.empty() && spec->folder != "input") folder = spec->folder;
          if (spec && spec->folder.empty()) continue;  // a declared input that names no model
        }
        if (folder.empty()) folder = folder_for_input(class_type, input);
        if (folder.empty()) continue;
        add_node_input(node_id, input, FolderPaths::map_legacy(folder), value.get<std::string>());
      }
    }
  }
};

std::string default_hasher(const fs::path& file, const std::string& algo) {
  if (algo == "sha256") return sha256_of_file(file);
  return "";
}

}  // namespace

std::string sha256_of_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ComfyError("FileNotFoundError", "cannot read " + file.string());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += hex[md[i] >> 4], out += hex[md[i] & 15];
  return out;
}

std::vector<ModelReference> collect_model_references(const json& workflow, const Registry* registry,
                                                     const Services* services, std::vector<std::string>* warnings) {
  Collector c;
  if (!workflow.is_object()) throw ComfyError("ValueError", "a workflow must be a JSON object");
  json doc = workflow;
  // A POST /prompt body: {"prompt": {...}, "extra_data": {"extra_pnginfo": {"workflow": ...}}}.
  if (doc.contains("prompt") && doc["prompt"].is_object() && !doc.contains("nodes")) {
    json prompt = doc["prompt"];
    json ui;
    if (doc.contains("extra_data") && doc["extra_data"].is_object())
      ui = doc["extra_data"].value("extra_pnginfo", json::object()).value("workflow", json());
    c.add_prompt(prompt, registry);
    if (ui.is_object()) {
      c.add_models_list(ui.value("models", json()), "", warnings);
      for (auto& n : ui.value("nodes", json::array()))
        if (n.is_object() && n.contains("properties") && n["properties"].is_object())
          c.add_models_list(n["properties"].value("models", json()), n.contains("id") ? n["id"].dump() : "", warnings);
    }
    return c.refs;
  }
  if (is_ui_workflow(doc)) {
    bool converted = false;
    if (registry && services) {
      try {
        c.add_prompt(ui_workflow_to_prompt(doc, *registry, *services), registry);
        converted = true;
      } catch (const std::exception& e) {
        if (warnings) warnings->push_back(std::string("the UI workflow could not be converted (") + e.what() +
                                          "); only its `models` lists were read");
      }
    }
    if (!converted && !(registry && services) && warnings)
      warnings->push_back("no node registry: only the UI workflow's `models` lists were read");
    c.add_models_list(doc.value("models", json()), "", warnings);
    auto scan_nodes = [&](const json& nodes, const std::string& prefix) {
      if (!nodes.is_array()) return;
      for (auto& n : nodes) {
        if (!n.is_object() || !n.contains("properties") || !n["properties"].is_object()) continue;
        std::string id = n.contains("id") ? (n["id"].is_string() ? n["id"].get<std::string>() : n["id"].dump()) : "";
        c.add_models_list(n["properties"].value("models", json()), prefix + id, warnings);
      }
    };
    scan_nodes(doc["nodes"], "");
    if (doc.contains("definitions") && doc["definitions"].is_object())
      for (auto& sg : doc["definitions"].value("subgraphs", json::array()))
        if (sg.is_object()) scan_nodes(sg.value("nodes", json::array()), "");
    return c.refs;
  }
  c.add_prompt(doc, registry);
  return c.refs;
}

json ModelResolution::to_json() const {
  auto opt = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return json{{"name", ref.name},
              {"directory", ref.folder},
              {"url", opt(ref.url)},
              {"hash", opt(ref.hash)},
              {"hash_type", opt(ref.hash.empty() ? "" : ref.hash_type)},
              {"nodes", ref.nodes},
              {"status", status},
              {"path", opt(path)},
              {"found_name", opt(found_name)},
              {"download_id", opt(download_id)},
              {"message", message}};
}

std::vector<ModelResolution> resolve_models(const std::vector<ModelReference>& refs, const FolderPaths& folders,
                                            const ResolveOptions& options) {
  auto hasher = options.hasher ? options.hasher : default_hasher;
  std::map<std::pair<std::string, std::string>, std::string> digest_memo;  // (path, algo) -> digest
  std::vector<ModelResolution> out;
  for (const auto& ref : refs) {
    ModelResolution r;
    r.ref = ref;
    if (ref.folder.empty() || !folders.has_folder(ref.folder)) {
      r.status = "invalid";
      r.message = "'" + ref.name + "' names the unknown model folder '" + ref.folder + "'";
      out.push_back(r);
      continue;
    }
    if (is_unsafe_name(ref.name)) {
      r.status = "invalid";
      r.message = "refused the model name '" + ref.name + "': it leaves the model folder ('..' or an absolute path)";
      out.push_back(r);
      continue;
    }
    // 1. The exact path.
    if (auto p = folders.get_full_path(ref.folder, ref.name)) {
      r.status = "found";
      r.path = p->string();
      r.found_name = ref.name;
      r.message = "found in " + ref.folder;
      out.push_back(r);
      continue;
    }
    // 2. The same file name elsewhere in the folder type, any letter case.
    const std::string want = ascii_lower(base_name(ref.name));
    std::vector<std::string> same_name;
    for (auto& f : folders.get_filename_list(ref.folder))
      if (ascii_lower(base_name(f)) == want) same_name.push_back(f);
    if (!same_name.empty()) {
      r.status = "found_elsewhere";
      r.found_name = same_name.front();
      if (auto p = folders.get_full_path(ref.folder, r.found_name)) r.path = p->string();
      r.message = "the workflow names '" + ref.name + "'; " + ref.folder + " has '" + r.found_name +
                  "' with the same file name" +
                  (same_name.size() > 1 ? " (and " + std::to_string(same_name.size() - 1) + " more)" : "") +
                  "; select it in the node to use it";
      out.push_back(r);
      continue;
    }
    // 3. The same hash anywhere in the model folders.
    if (!ref.hash.empty()) {
      std::string algo = ref.hash_type.empty() ? "sha256" : ref.hash_type;
      bool found = false;
      bool supported = true;
      for (auto& folder : folders.folder_names()) {
        if (found || !supported) break;
        if (folder == "custom_nodes" || folder == "configs") continue;
        for (auto& f : folders.get_filename_list(folder)) {
          auto p = folders.get_full_path(folder, f);
          if (!p) continue;
          auto key = std::make_pair(p->string(), algo);
          auto it = digest_memo.find(key);
          std::string d;
          if (it != digest_memo.end()) {
            d = it->second;
          } else {
            try {
              d = hasher(*p, algo);
            } catch (const std::exception&) {
              d.clear();
            }
            digest_memo[key] = d;
          }
          if (d.empty() && algo != "sha256") {
            supported = false;
            break;
          }
          if (!d.empty() && d == ref.hash) {
            r.status = "found_by_hash";
            r.path = p->string();
            r.found_name = folder == ref.folder ? f : folder + "/" + f;
            r.message = "'" + ref.name + "' was not found by name, but " + folder + "/" + f + " has its " + algo +
                        (folder == ref.folder ? "" : " (in another folder: move it to " + ref.folder + ")");
            found = true;
            break;
          }
        }
      }
      if (found) {
        out.push_back(r);
        continue;
      }
    }
    // 4. A download from its url.
    if (!ref.url.empty() && options.download && options.downloads) {
      DownloadRequest req;
      req.url = ref.url;
      req.directory = ref.folder;
      req.filename = ref.name;  // "sd15/x.safetensors" lands in that subfolder, as the workflow names it
      if (ref.hash_type.empty() || ref.hash_type == "sha256") req.sha256 = ref.hash;
      try {
        r.download_id = options.downloads->enqueue(req);
        if (options.wait_for_downloads) {
          DownloadState st = options.downloads->wait(r.download_id);
          if (st.status == DownloadStatus::completed) {
            r.status = "downloaded";
            r.path = st.target.string();
            r.found_name = st.request.filename;
            r.message = "downloaded to " + r.path;
          } else {
            r.status = "download_failed";
            r.message = "the download from " + ref.url.substr(0, ref.url.find('?')) + " failed: " + st.error;
          }
        } else {
          r.status = "download_queued";
          r.message = "downloading into " + ref.folder + " (download " + r.download_id + ")";
        }
      } catch (const std::exception& e) {
        r.status = "download_failed";
        r.message = std::string("the download was refused: ") + e.what();
      }
      out.push_back(r);
      continue;
    }
    r.status = "missing";
    std::string dirs;
    for (auto& d : folders.get_folder_paths(ref.folder)) dirs += (dirs.empty() ? "" : ", ") + d.string();
    r.message = "'" + ref.name + "' is not in " + ref.folder + " (" + dirs + ")" +
                (ref.url.empty() ? "; the workflow gives no download URL"
                                 : "; it can be downloaded from " + ref.url.substr(0, ref.url.find('?')));
    out.push_back(r);
  }
  return out;
}

json missing_models_report(const std::vector<ModelResolution>& resolutions, const std::vector<std::string>& warnings) {
  json models = json::array();
  int missing = 0;
  for (auto& r : resolutions) {
    models.push_back(r.to_json());
    if (r.status == "missing" || r.status == "download_failed" || r.status == "invalid") ++missing;
  }
  return json{{"models", models}, {"missing", missing}, {"warnings", warnings}};
}

}  // namespace comfy
