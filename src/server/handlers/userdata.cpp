// ComfyUI's app/user_manager.py and app/app_settings.py: /users, /settings (+ /{id}),
// /userdata (list, file GET/POST/DELETE, move), /v2/userdata. A user's files live in
// <user directory>/<user id>/; ids starting with "__" (system users, such as our own
// __comfycpp queue database) are never reachable.
#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "server/handlers/handlers.h"

namespace comfy::server {

namespace fs = std::filesystem;

namespace {

struct UnknownUser {};

fs::path user_root_dir(Context& ctx) { return ctx.folders.user_directory(); }

// ComfyUI's UserManager.users: single-user, {"default": "default"}; multi-user, users.json, or no
// user at all while there is none (every request is then an unknown user until one is created).
json load_users(Context& ctx) {
  if (!ctx.options.multi_user) return json{{"default", "default"}};
  fs::path file = user_root_dir(ctx) / "users.json";
  std::ifstream in(file);
  if (!in) return json::object();
  try {
    json j = json::parse(in);
    if (j.is_object()) return j;
  } catch (const std::exception&) {
  }
  return json::object();
}

std::string request_user(Context& ctx, const Request& req) {
  std::string user = "default";
  if (ctx.options.multi_user) {
    if (const std::string* h = req.header("comfy-user")) {
      user = *h;
      if (user.rfind("__", 0) == 0) throw UnknownUser{};
    }
  }
  std::lock_guard lock(ctx.users_mutex);
  if (!load_users(ctx).contains(user)) throw UnknownUser{};
  return user;
}

// get_request_user_filepath: nullopt when the path would leave the user's folder.
std::optional<fs::path> user_path(Context& ctx, const Request& req, const std::optional<std::string>& file,
                                  bool create_dir) {
  fs::path root = user_root_dir(ctx);
  std::string user = request_user(ctx, req);
  auto user_root = contained_path(root, user);
  if (!user_root) return std::nullopt;
  fs::path path = *user_root;
  if (file) {
    std::string f = *file;
    if (f.find('%') != std::string::npos) f = percent_decode(f);
    auto p = contained_path(*user_root, f);
    if (!p) return std::nullopt;
    path = *p;
  }
  if (create_dir) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
  }
  return path;
}

json file_info(const fs::path& p, const fs::path& relative_to) {
  std::error_code ec;
  return json{{"path", fs::relative(p, relative_to).generic_string()},
              {"size", fs::file_size(p, ec)},
              {"modified", file_time_seconds(p, false)},
              {"created", file_time_seconds(p, true)}};
}

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// get_user_data_path: (path, early response).
std::pair<fs::path, std::optional<Response>> data_path(Context& ctx, const Request& req, bool check_exists,
                                                       const char* param = "file") {
  std::string file = req.param(param);
  if (file.empty()) return {{}, Response::empty(400)};
  auto p = user_path(ctx, req, file, true);
  if (!p) return {{}, Response::empty(403)};
  if (check_exists && !fs::exists(*p)) return {{}, Response::empty(404)};
  return {*p, std::nullopt};
}

// Unknown users surface as a Python KeyError: 500 on the userdata routes.
template <typename F>
Response userdata_route(F&& f) {
  try {
    return f();
  } catch (const UnknownUser&) {
    throw std::runtime_error("KeyError: Unknown user");
  }
}

json read_settings(Context& ctx, const Request& req) {
  std::optional<fs::path> file;
  try {
    file = user_path(ctx, req, std::string("comfy.settings.json"), true);
  } catch (const UnknownUser&) {
    spdlog::error("User settings not found.");
    throw HttpError{Response::text("401: Unauthorized", 401)};
  }
  if (!file || !fs::is_regular_file(*file)) return json::object();
  try {
    std::ifstream in(*file);
    return json::parse(in);
  } catch (const std::exception&) {
    spdlog::error("The user settings file is corrupted: {}", file->string());
    return json::object();
  }
}

void write_settings(Context& ctx, const Request& req, const json& settings) {
  std::optional<fs::path> file;
  try {
    file = user_path(ctx, req, std::string("comfy.settings.json"), true);
  } catch (const UnknownUser&) {
    throw std::runtime_error("KeyError: Unknown user");
  }
  if (!file) throw std::runtime_error("TypeError: settings path");
  std::ofstream out(*file, std::ios::trunc);
  out << settings.dump(4, ' ', true);
}

}  // namespace

Response get_users(Context& ctx, Request&) {
  std::lock_guard lock(ctx.users_mutex);
  if (ctx.options.multi_user) return Response::json_body(json{{"storage", "server"}, {"users", load_users(ctx)}});
  return Response::json_body(
      json{{"storage", "server"}, {"migrated", fs::exists(user_root_dir(ctx) / "default")}});
}

Response post_users(Context& ctx, Request& req) {
  json body = body_json(req);
  if (!body.is_object() || !body.contains("username")) throw std::runtime_error("KeyError: 'username'");
  const json& username = body["username"];
  std::lock_guard lock(ctx.users_mutex);
  json users = load_users(ctx);
  for (auto& [id, name] : users.items())
    if (name == username) return Response::json_body(json{{"error", "Duplicate username."}}, 400);
  if (!username.is_string()) throw std::runtime_error("AttributeError: username is not a string");
  std::string name = username.get<std::string>();
  size_t b = name.find_first_not_of(" \t\n\r\f\v"), e = name.find_last_not_of(" \t\n\r\f\v");
  name = b == std::string::npos ? "" : name.substr(b, e - b + 1);
  if (name.empty()) return Response::json_body(json{{"error", "username not provided"}}, 400);
  if (name.rfind("__", 0) == 0) return Response::json_body(json{{"error", "System User prefix not allowed"}}, 400);
  std::string id = std::regex_replace(name, std::regex("[^a-zA-Z0-9\\-_]+"), "-") + "_" + new_uuid4();
  users[id] = name;
  std::error_code ec;
  fs::create_directories(user_root_dir(ctx), ec);
  std::ofstream out(user_root_dir(ctx) / "users.json", std::ios::trunc);
  out << users.dump(-1, ' ', true);
  return Response::json_body(id);
}

Response get_settings(Context& ctx, Request& req) {
  std::lock_guard lock(ctx.users_mutex);
  return Response::json_body(read_settings(ctx, req));
}

Response get_setting(Context& ctx, Request& req) {
  std::lock_guard lock(ctx.users_mutex);
  json settings = read_settings(ctx, req);
  std::string id = req.param("id");
  return Response::json_body(settings.is_object() && settings.contains(id) ? settings[id] : json());
}

Response post_settings(Context& ctx, Request& req) {
  json update = body_json(req);
  std::lock_guard lock(ctx.users_mutex);
  json settings = read_settings(ctx, req);
  if (!update.is_object() || !settings.is_object()) throw std::runtime_error("TypeError: settings must be an object");
  for (auto& [k, v] : update.items()) settings[k] = v;
  write_settings(ctx, req, settings);
  return Response::empty(200);
}

Response post_setting(Context& ctx, Request& req) {
  json value = body_json(req);
  std::lock_guard lock(ctx.users_mutex);
  json settings = read_settings(ctx, req);
  if (!settings.is_object()) settings = json::object();
  settings[req.param("id")] = value;
  write_settings(ctx, req, settings);
  return Response::empty(200);
}

Response get_userdata(Context& ctx, Request& req) {
  return userdata_route([&] {
    auto dir = req.query_value("dir");
    if (!dir) return Response::text("Directory not provided", 400);
    auto path = user_path(ctx, req, *dir, true);
    if (!path) return Response::text("Invalid directory", 403);
    if (!fs::exists(*path)) return Response::text("Directory not found", 404);
    bool recurse = req.query_value("recurse").value_or("") == "true";
    bool full_info = req.query_value("full_info").value_or("") == "true";
    bool split = req.query_value("split").value_or("") == "true";
    json out = json::array();
    std::error_code ec;
    auto add = [&](const fs::path& p) {
      if (!fs::is_regular_file(p, ec)) return;
      std::string rel = fs::relative(p, *path).generic_string();
      if (full_info) {
        json info = file_info(p, *path);
        out.push_back(info);
      } else if (split) {
        json parts = json::array({rel});
        for (auto& part : fs::path(rel)) parts.push_back(part.string());
        out.push_back(parts);
      } else {
        out.push_back(rel);
      }
    };
    if (recurse) {
      for (auto it = fs::recursive_directory_iterator(*path, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        std::string n = it->path().filename().string();
        if (!n.empty() && n[0] == '.') {  // glob skips hidden entries
          if (it->is_directory(ec)) it.disable_recursion_pending();
          continue;
        }
        add(it->path());
      }
    } else {
      for (auto& e : fs::directory_iterator(*path, ec)) {
        std::string n = e.path().filename().string();
        if (!n.empty() && n[0] != '.') add(e.path());
      }
    }
    return Response::json_body(out);
  });
}

Response get_userdata_v2(Context& ctx, Request& req) {
  std::string rel = percent_decode(req.query_value("path").value_or(""));
  std::optional<fs::path> base, target;
  try {
    base = user_path(ctx, req, std::nullopt, false);
    target = rel.empty() ? base : user_path(ctx, req, rel, false);
  } catch (const UnknownUser&) {
    return Response::text("Invalid user specified in request", 403);
  }
  if (!target || !base) return Response::text("Invalid path requested", 400);
  std::error_code ec;
  if (!fs::exists(*target, ec)) {
    if (*target == *base) return Response::json_body(json::array());
    return Response::text("Requested path not found", 404);
  }
  if (!fs::is_directory(*target, ec)) return Response::text("Requested path is not a directory", 400);
  std::vector<json> results;
  for (auto it = fs::recursive_directory_iterator(*target, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string relp = fs::relative(it->path(), *base).generic_string();
    if (it->is_directory(ec)) {
      results.push_back(json{{"name", name}, {"path", relp}, {"type", "directory"}});
    } else {
      json entry{{"name", name}, {"path", relp}, {"type", "file"}};
      std::error_code sec;
      auto size = fs::file_size(it->path(), sec);
      if (!sec) entry["size"] = size, entry["modified"] = file_time_seconds(it->path(), false);
      results.push_back(entry);
    }
  }
  auto key = [](const json& j) {
    std::string n = j["name"].get<std::string>();
    std::transform(n.begin(), n.end(), n.begin(), ::tolower);
    return std::make_pair(j["type"] != "directory", n);
  };
  std::stable_sort(results.begin(), results.end(), [&](const json& a, const json& b) { return key(a) < key(b); });
  return Response::json_body(json(results));
}

Response get_userdata_file(Context& ctx, Request& req) {
  return userdata_route([&] {
    auto [path, early] = data_path(ctx, req, true);
    if (early) return *early;
    if (!fs::is_regular_file(path)) return Response::empty(404);
    auto data = read_text(path);
    if (!data) return Response::empty(404);
    std::string ext = path.extension().string();
    std::string type = ext == ".json" ? "application/json" : ext == ".png" ? "image/png" : ext == ".txt" ? "text/plain"
                                                                                                          : "application/octet-stream";
    return Response::bytes(std::move(*data), type);
  });
}

Response post_userdata_file(Context& ctx, Request& req) {
  return userdata_route([&] {
    auto [path, early] = data_path(ctx, req, false);
    if (early) return *early;
    bool overwrite = req.query_value("overwrite").value_or("true") != "false";
    std::string full = req.query_value("full_info").value_or("false");
    std::transform(full.begin(), full.end(), full.begin(), ::tolower);
    if (!overwrite && fs::exists(path)) return Response::text("File already exists", 409);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return Response::text("Invalid filename. Please avoid special characters like :\\/*?\"<>|", 400);
    out.write(req.body.data(), static_cast<std::streamsize>(req.body.size()));
    out.close();
    fs::path user_root = *user_path(ctx, req, std::nullopt, false);
    if (full == "true") return Response::json_body(file_info(path, user_root));
    return Response::json_body(fs::relative(path, user_root).string());
  });
}

Response delete_userdata_file(Context& ctx, Request& req) {
  return userdata_route([&] {
    auto [path, early] = data_path(ctx, req, true);
    if (early) return *early;
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) throw std::runtime_error("cannot delete " + path.string() + ": " + ec.message());
    return Response::empty(204);
  });
}

Response post_userdata_move(Context& ctx, Request& req) {
  return userdata_route([&] {
    auto [source, early] = data_path(ctx, req, true);
    if (early) return *early;
    auto [dest, early2] = data_path(ctx, req, false, "dest");
    if (early2) return *early2;
    bool overwrite = req.query_value("overwrite").value_or("true") != "false";
    std::string full = req.query_value("full_info").value_or("false");
    std::transform(full.begin(), full.end(), full.begin(), ::tolower);
    if (!overwrite && fs::exists(dest)) return Response::text("File already exists", 409);
    std::error_code ec;
    fs::rename(source, dest, ec);
    if (ec) throw std::runtime_error("cannot move: " + ec.message());
    fs::path user_root = *user_path(ctx, req, std::nullopt, false);
    if (full == "true") return Response::json_body(file_info(dest, user_root));
    return Response::json_body(fs::relative(dest, user_root).string());
  });
}

}  // namespace comfy::server
