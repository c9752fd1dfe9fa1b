// The real ComfyUI's answers, replayed: tests/fixtures/routes/recorded.json (written by
// tools/oracle/record_routes.py against ComfyUI 0.8.0) holds requests in order and what ComfyUI
// answered. Each is sent to an in-process comfycpp over the same folders (input/ holds
// fixtures/routes/input, the rest starts empty) and its status, content type and body are compared,
// with the entry's volatile fields (JSON pointers, "*" matching every key or index) masked on both
// sides. Entries with a `known_difference` are sent (later ones may depend on them) but not compared.
#include <gtest/gtest.h>

#include <fstream>

#include "io/image.h"
#include "io/sha256.h"
#include "nodes/all.h"
#include "routes/fixture.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

json load_recorded() {
  std::ifstream in(fs::path(COMFY_TEST_DATA) / "routes" / "recorded.json");
  if (!in) throw std::runtime_error("cannot open tests/fixtures/routes/recorded.json");
  return json::parse(in);
}

std::string base64_decode(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : s) {
    int v = val(c);
    if (v < 0) continue;  // '=' and line breaks
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::vector<std::string> split_pointer(const std::string& pointer) {
  std::vector<std::string> parts;
  if (pointer.empty()) return parts;
  size_t start = 1;
  while (true) {
    size_t slash = pointer.find('/', start);
    std::string token = pointer.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    for (size_t i; (i = token.find("~1")) != std::string::npos;) token.replace(i, 2, "/");
    for (size_t i; (i = token.find("~0")) != std::string::npos;) token.replace(i, 2, "~");
    parts.push_back(token);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

// Replaces the value at `parts[i..]` (where present) by the marker "<volatile>".
void mask(json& value, const std::vector<std::string>& parts, size_t i) {
  if (i == parts.size()) {
    value = "<volatile>";
    return;
  }
  const std::string& token = parts[i];
  if (value.is_object()) {
    if (token == "*") {
      for (auto& [k, v] : value.items()) mask(v, parts, i + 1);
    } else if (value.contains(token)) {
      mask(value[token], parts, i + 1);
    }
  } else if (value.is_array()) {
    if (token == "*") {
      for (auto& v : value) mask(v, parts, i + 1);
    } else if (!token.empty() && std::all_of(token.begin(), token.end(), ::isdigit)) {
      size_t index = std::stoul(token);
      if (index < value.size()) mask(value[index], parts, i + 1);
    }
  }
}

std::string shorten(const std::string& s, size_t n = 1500) { return s.size() > n ? s.substr(0, n) + "..." : s; }

// The picture's pixels as Pillow's Image.tobytes() gives them, with its mode and size.
json pixel_info(const std::string& bytes) {
  io::DecodedImage img = io::decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()), "the answer");
  const io::Frame& f = img.frames.at(0);
  std::string mode = img.mode == "P" ? (img.channels == 4 ? "RGBA" : "RGB") : img.mode;
  return json{{"format", img.format},
              {"mode", mode},
              {"width", f.width},
              {"height", f.height},
              {"pixels_sha256", io::sha256_hex(std::string_view(reinterpret_cast<const char*>(f.pixels.data()),
                                                                f.pixels.size()))}};
}

void all_nodes(server::ServerOptions&, Registry& r) { register_all_nodes(r); }

TEST(RecordedRoutes, AnswersAsComfyUI) {
  json recorded = load_recorded();
  TestServer s(all_nodes);
  fs::copy(fs::path(COMFY_TEST_DATA) / "routes" / "input", s.env.folders->input_directory(),
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);

  int compared = 0, known = 0;
  for (const json& entry : recorded.at("entries")) {
    const json& rq = entry.at("request");
    std::string label = rq.at("method").get<std::string>() + " " + rq.at("path").get<std::string>();
    if (rq.contains("body")) label += " " + shorten(rq["body"].get<std::string>(), 200);
    SCOPED_TRACE(label);
    if (entry.contains("wait_history")) {
      std::string id = entry["wait_history"].get<std::string>();
      EXPECT_TRUE(wait_for([&] { return s.get("/history/" + id).json_body().contains(id); }))
          << "prompt " << id << " did not finish";
    }
    std::string body = rq.contains("body") ? rq["body"].get<std::string>()
                       : rq.contains("body_base64") ? base64_decode(rq["body_base64"].get<std::string>())
                                                    : "";
    Headers headers;
    for (auto& [k, v] : rq.at("headers").items()) headers.emplace_back(k, v.get<std::string>());
    HttpResult ours = s.request(rq["method"].get<std::string>(), rq["path"].get<std::string>(), body, headers);

    if (entry.contains("known_difference")) {
      ++known;
      continue;
    }
    ++compared;
    const json& answer = entry.at("answer");
    std::string mode = entry.value("compare", "exact");
    EXPECT_EQ(ours.status, answer.at("status").get<int>()) << "ours: " << shorten(ours.body);
    EXPECT_EQ(ours.header("content-type"), answer.at("content_type").get<std::string>());
    if (mode == "status" || ours.status != answer.at("status").get<int>()) continue;

    if (answer.contains("body")) {
      json theirs = answer["body"], mine;
      try {
        mine = json::parse(ours.body);
      } catch (const std::exception&) {
        ADD_FAILURE() << "our body is not JSON: " << shorten(ours.body);
        continue;
      }
      if (entry.contains("volatile"))
        for (auto& p : entry["volatile"]) {
          auto parts = split_pointer(p.get<std::string>());
          mask(theirs, parts, 0);
          mask(mine, parts, 0);
        }
      EXPECT_EQ(mine, theirs) << "ours:   " << shorten(mine.dump()) << "\ntheirs: " << shorten(theirs.dump());
    } else if (answer.contains("text")) {
      EXPECT_EQ(ours.body, answer["text"].get<std::string>());
    } else if (mode == "pixels") {
      ASSERT_TRUE(answer.contains("image"));
      json mine;
      try {
        mine = pixel_info(ours.body);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "our answer is not a picture: " << e.what();
        continue;
      }
      EXPECT_EQ(mine, answer["image"]);
    } else {
      EXPECT_EQ(io::sha256_hex(ours.body), answer.at("body_sha256").get<std::string>())
          << (answer.contains("image") ? "theirs: " + answer["image"].dump() : std::string());
    }
  }
  EXPECT_GT(compared, 100);
  std::cout << compared << " answers compared, " << known << " known differences\n";
}

}  // namespace
}  // namespace comfy::testing
