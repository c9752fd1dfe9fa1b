// GET /view, GET /view_metadata/{folder}, POST /upload/image and /upload/mask. Files are only
// ever addressed inside the input/output/temp directories: "..", absolute names, NUL bytes,
// backslashes and symlinks that lead out are refused, and an upload must be a picture (or a
// media file the web UI uploads here: see upload_refusal).
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "server/handlers/handlers.h"
#include "server/image.h"
#include "server/multipart.h"

namespace comfy::server {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Python's mimetypes.guess_type for the files ComfyUI serves; the types a browser would run
// (HTML, JS, CSS) are served as downloads instead.
std::string content_type_for(const std::string& filename) {
  static const std::map<std::string, std::string> kTypes = {
      {".png", "image/png"},        {".jpg", "image/jpeg"},       {".jpeg", "image/jpeg"},
      {".webp", "image/webp"},      {".gif", "image/gif"},        {".bmp", "image/bmp"},
      {".tif", "image/tiff"},       {".tiff", "image/tiff"},      {".svg", "image/svg+xml"},
      {".ico", "image/vnd.microsoft.icon"}, {".json", "application/json"}, {".txt", "text/plain"},
      {".mp4", "video/mp4"},        {".webm", "video/webm"},      {".mov", "video/quicktime"},
      {".mkv", "video/x-matroska"}, {".avi", "video/x-msvideo"},  {".wav", "audio/x-wav"},
      {".mp3", "audio/mpeg"},       {".flac", "audio/flac"},      {".ogg", "audio/ogg"},
      {".opus", "audio/ogg"},       {".m4a", "audio/mp4"},        {".pdf", "application/pdf"},
      {".zip", "application/zip"},  {".glb", "model/gltf-binary"}, {".gltf", "model/gltf+json"},
      {".obj", "model/obj"}};
  std::string ext = fs::path(filename).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

bool unsafe_name(const std::string& s) {
  return s.find('\0') != std::string::npos || s.find('\\') != std::string::npos;
}

// The directory an upload goes to (ComfyUI's get_dir_by_type); an unknown type crashes there.
fs::path upload_dir(Context& ctx, const std::optional<std::string>& type, std::string& type_out) {
  type_out = type.value_or("input");
  auto dir = ctx.folders.directory_by_type(type_out);
  if (!dir) throw std::runtime_error("UnboundLocalError: unknown upload type " + type_out);
  return *dir;
}

using SaveFunction = std::function<void(const std::string& bytes, const Multipart& form, const fs::path& target)>;

Response image_upload(Context& ctx, Request& req, const SaveFunction& save) {
  Multipart form = parse_multipart(req);
  const FormPart* image = form.get("image");
  if (!image) return Response::empty(400);
  if (!image->is_file) throw std::runtime_error("AttributeError: 'str' object has no attribute 'file'");
  std::string filename = image->filename;
  if (filename.empty()) return Response::empty(400);
  std::string type;
  fs::path dir = upload_dir(ctx, form.value("type"), type);
  std::string subfolder = form.value("subfolder").value_or("");
  auto overwrite = form.value("overwrite");
  if (unsafe_name(filename) || unsafe_name(subfolder)) return Response::empty(400);
  auto folder = contained_path(dir, subfolder.empty() ? "." : subfolder);
  if (!folder) return Response::empty(400);
  auto target = contained_path(dir, (fs::path(subfolder.empty() ? "." : subfolder) / filename).string());
  if (!target || fs::path(filename).filename().empty()) return Response::empty(400);
  // Not in ComfyUI: only pictures (and the media the web UI uploads here) are stored.
  if (std::string refusal = upload_refusal(image->data); !refusal.empty()) {
    spdlog::warn("upload of {} refused: {}", filename, refusal);
    return Response::json_body(json{{"error", refusal}}, 400);
  }
  std::error_code ec;
  fs::create_directories(target->parent_path(), ec);
  if (ec) throw std::runtime_error("cannot create " + target->parent_path().string() + ": " + ec.message());

  bool duplicate = false;
  if (!(overwrite && (*overwrite == "true" || *overwrite == "1"))) {
    fs::path name(filename);
    std::string stem = name.stem().string(), ext = name.extension().string();
    if (stem.empty() && !ext.empty()) stem = ext, ext.clear();  // ".hidden" has no extension in Python
    for (int i = 1; fs::exists(*target); ++i) {
      // Same bytes: the existing file is the upload (ComfyUI compares hashes).
      if (auto existing = read_file(*target); existing && *existing == image->data) {
        duplicate = true;
        break;
      }
      filename = stem + " (" + std::to_string(i) + ")" + ext;
      *target = target->parent_path() / filename;
      if (i > 100000) throw std::runtime_error("no free upload name");
    }
  }
  if (!duplicate) {
    if (save) {
      save(image->data, form, *target);
    } else {
      std::ofstream out(*target, std::ios::binary | std::ios::trunc);
      out.write(image->data.data(), static_cast<std::streamsize>(image->data.size()));
      if (!out) throw std::runtime_error("cannot write " + target->string());
    }
  }
  return Response::json_body(json{{"name", filename}, {"subfolder", subfolder}, {"type", type}});
}

}  // namespace

Response post_upload_image(Context& ctx, Request& req) { return image_upload(ctx, req, nullptr); }

Response post_upload_mask(Context& ctx, Request& req) {
  return image_upload(ctx, req, [&](const std::string& bytes, const Multipart& form, const fs::path& target) {
    json ref = json::parse(form.value("original_ref").value_or(""));
    if (!ref.is_object() || !ref.contains("filename") || !ref["filename"].is_string())
      throw std::runtime_error("KeyError: 'filename'");
    auto [name, annotated] = FolderPaths::split_annotation(ref["filename"].get<std::string>());
    // ComfyUI's early returns here only skip the write: the upload still answers 200.
    if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos || unsafe_name(name)) return;
    std::optional<fs::path> dir;
    if (annotated) dir = ctx.folders.directory_by_type(*annotated);
    else dir = ctx.folders.directory_by_type(ref.value("type", std::string("output")));
    if (!dir) return;
    std::string sub = ref.contains("subfolder") && ref["subfolder"].is_string() ? ref["subfolder"].get<std::string>() : "";
    if (!sub.empty()) {
      auto d = contained_path(*dir, sub);
      if (!d) return;
      dir = d;
    }
    auto original = contained_path(*dir, name);
    if (!original || !fs::is_regular_file(*original)) return;
    auto original_bytes = read_file(*original);
    if (!original_bytes) return;
    std::string merged;
    std::string error;
    if (!merge_mask_alpha(*original_bytes, bytes, merged, error)) {
      spdlog::warn("upload/mask: {}", error);
      return;
    }
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    out.write(merged.data(), static_cast<std::streamsize>(merged.size()));
  });
}

Response get_view(Context& ctx, Request& req) {
  auto requested = req.query_value("filename");
  if (!requested) return Response::empty(404);
  auto [filename, annotated] = FolderPaths::split_annotation(*requested);
  if (filename.empty()) return Response::empty(400);
  if (filename[0] == '/' || filename.find("..") != std::string::npos || unsafe_name(filename))
    return Response::empty(400);
  std::optional<fs::path> dir;
  if (annotated) dir = ctx.folders.directory_by_type(*annotated);
  else dir = ctx.folders.directory_by_type(req.query_value("type").value_or("output"));
  if (!dir) return Response::empty(400);
  fs::path base = *dir;
  if (auto sub = req.query_value("subfolder")) {
    auto d = contained_path(*dir, sub->empty() ? "." : *sub);
    if (!d) return Response::empty(403);
    base = *d;
  }
  std::string name = fs::path(filename).filename().string();
  auto file = contained_path(base, name);
  std::error_code ec;
  if (!file || name.empty() || !fs::is_regular_file(*file, ec)) return Response::empty(404);
  auto bytes = read_file(*file);
  if (!bytes) return Response::empty(404);
  std::string disposition = "filename=\"" + name + "\"";

  std::string channel = req.query_value("channel").value_or("rgba");
  if (auto preview = req.query_value("preview")) {
    std::string format = preview->substr(0, preview->find(';'));
    std::string channel_given = req.query_value("channel").value_or("");
    if ((format != "webp" && format != "jpeg") || channel_given.find('a') != std::string::npos) format = "webp";
    std::string last = preview->substr(preview->rfind(';') == std::string::npos ? 0 : preview->rfind(';') + 1);
    int quality = 90;
    if (!last.empty() && std::all_of(last.begin(), last.end(), ::isdigit) && last.size() < 4) quality = std::stoi(last);
    std::string out, error;
    if (!encode_preview(*bytes, format, quality, format == "jpeg" || channel_given == "rgb", out, error))
      throw std::runtime_error("preview: " + error);
    Response r = Response::bytes(std::move(out), "image/" + format);
    r.set_header("Content-Disposition", disposition);
    return r;
  }
  if (channel == "rgb" || channel == "a") {
    std::string out, error;
    if (!extract_channel(*bytes, channel == "a", out, error)) throw std::runtime_error("channel: " + error);
    Response r = Response::bytes(std::move(out), "image/png");
    r.set_header("Content-Disposition", disposition);
    return r;
  }
  Response r = Response::bytes(std::move(*bytes), content_type_for(name));
  r.set_header("Content-Disposition", disposition);
  return r;
}

Response get_view_metadata(Context& ctx, Request& req) {
  auto filename = req.query_value("filename");
  std::string folder = req.param("folder_name");
  if (!filename || filename->size() < 12 || filename->compare(filename->size() - 12, 12, ".safetensors") != 0)
    return Response::empty(404);
  if (unsafe_name(*filename) || filename->find("..") != std::string::npos) return Response::empty(404);
  std::optional<fs::path> path;
  try {
    path = ctx.folders.get_full_path(folder, *filename);
  } catch (const std::exception&) {
    return Response::empty(404);
  }
  if (!path) return Response::empty(404);
  std::ifstream in(*path, std::ios::binary);
  unsigned char len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) return Response::empty(404);
  uint64_t len = 0;
  for (int i = 7; i >= 0; --i) len = (len << 8) | len_bytes[i];
  if (len > 1024 * 1024) return Response::empty(404);
  std::string header(len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(len))) return Response::empty(404);
  json h = json::parse(header);
  if (!h.is_object() || !h.contains("__metadata__")) return Response::empty(404);
  return Response::json_body(h["__metadata__"]);
}

}  // namespace comfy::server
