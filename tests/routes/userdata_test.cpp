// /users, /settings (+ /{id}), /userdata (list, file GET/POST/DELETE, move), /v2/userdata.
#include <gtest/gtest.h>

#include <fstream>

#include "routes/fixture.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

TEST(RouteUserdata, SettingsRoundTrip) {
  TestServer s;
  for (auto& path : both("/settings")) EXPECT_EQ(s.get(path).json_body(), json::object());
  EXPECT_EQ(s.post("/settings", json{{"Comfy.A", 1}, {"Comfy.B", "x"}}).status, 200);
  EXPECT_EQ(s.post("/api/settings/Comfy.C", json{{"nested", true}}).status, 200);
  EXPECT_EQ(s.get("/settings").json_body(), (json{{"Comfy.A", 1}, {"Comfy.B", "x"}, {"Comfy.C", {{"nested", true}}}}));
  EXPECT_EQ(s.get("/settings/Comfy.B").json_body(), "x");
  EXPECT_EQ(s.get("/api/settings/missing").json_body(), nullptr);
  EXPECT_TRUE(fs::exists(s.env.folders->user_directory() / "default" / "comfy.settings.json"));
  EXPECT_EQ(s.request("POST", "/settings", "{").status, 500);
}

TEST(RouteUserdata, FilesListMoveDelete) {
  TestServer s;
  for (auto& base : both("/userdata")) {
    SCOPED_TRACE(base);
    fs::remove_all(s.env.folders->user_directory() / "default");
    HttpResult w = s.request("POST", base + "/workflows%2Fa.json", "{\"a\": 1}");
    EXPECT_EQ(w.status, 200);
    EXPECT_EQ(w.json_body(), "workflows/a.json");
    EXPECT_EQ(s.get(base + "/workflows%2Fa.json").body, "{\"a\": 1}");
    EXPECT_EQ(s.request("POST", base + "/workflows%2Fa.json?overwrite=false", "x").status, 409);
    json info = s.request("POST", base + "/workflows%2Fb.json?full_info=true", "bb").json_body();
    EXPECT_EQ(info["path"], "workflows/b.json");
    EXPECT_EQ(info["size"], 2);
    EXPECT_TRUE(info["modified"].is_number_float());
    json list = s.get(base + "?dir=workflows").json_body();
    std::sort(list.begin(), list.end());
    EXPECT_EQ(list, json::parse(R"(["a.json", "b.json"])"));
    EXPECT_EQ(s.get(base + "?dir=missing").status, 404);
    EXPECT_EQ(s.get(base).status, 400);
    EXPECT_EQ(s.get(base + "?dir=..%2F..").status, 403);
    HttpResult mv = s.request("POST", base + "/workflows%2Fa.json/move/workflows%2Fc.json");
    EXPECT_EQ(mv.status, 200);
    EXPECT_EQ(mv.json_body(), "workflows/c.json");
    EXPECT_EQ(s.request("POST", base + "/workflows%2Fb.json/move/workflows%2Fc.json?overwrite=false").status, 409);
    EXPECT_EQ(s.request("DELETE", base + "/workflows%2Fc.json").status, 204);
    EXPECT_EQ(s.request("DELETE", base + "/workflows%2Fc.json").status, 404);
    EXPECT_EQ(s.get(base + "/workflows%2Fc.json").status, 404);
  }
  json v2 = s.get("/api/v2/userdata").json_body();
  ASSERT_GE(v2.size(), 2u);
  EXPECT_EQ(v2[0], (json{{"name", "workflows"}, {"path", "workflows"}, {"type", "directory"}}));
  EXPECT_EQ(v2[1]["path"], "workflows/b.json");
  EXPECT_EQ(s.get("/v2/userdata?path=nope").status, 404);
  EXPECT_EQ(s.get("/v2/userdata?path=..").status, 400);
}

TEST(RouteUserdata, EscapesAndSystemUsersAreUnreachable) {
  TestServer s;
  fs::create_directories(s.env.folders->user_directory() / "__comfycpp");
  std::ofstream(s.env.folders->user_directory() / "__comfycpp" / "x.json") << "{}";
  std::ofstream(s.env.dir / "outside.json") << "secret";
  for (std::string f : {"..%2F__comfycpp%2Fx.json", "..%2F..%2Foutside.json", "%2Fetc%2Fpasswd", "%252E%252E%252Foutside.json",
                        "a%5C..%5C..%5Coutside.json", "a%00b"}) {
    HttpResult r = s.get("/userdata/" + f);
    EXPECT_TRUE(r.status == 403 || r.status == 404) << f << " " << r.status;
    EXPECT_NE(r.body, "secret");
    EXPECT_NE(s.request("POST", "/userdata/" + f, "x").status, 200) << f;
  }
}

TEST(RouteUserdata, UsersSingleAndMulti) {
  TestServer single;
  json u = single.get("/users").json_body();
  EXPECT_EQ(u["storage"], "server");
  EXPECT_TRUE(u.contains("migrated"));

  TestServer multi([](server::ServerOptions& o, Registry& r) {
    o.multi_user = true;
    register_testing_nodes(r);
  });
  // No users.json yet: no user at all, so a request without Comfy-User is an unknown user.
  EXPECT_EQ(multi.get("/users").json_body(), (json{{"storage", "server"}, {"users", json::object()}}));
  EXPECT_EQ(multi.get("/settings").status, 401);
  HttpResult created = multi.post("/users", json{{"username", "Ann Lee"}});
  ASSERT_EQ(created.status, 200);
  std::string id = created.json_body().get<std::string>();
  EXPECT_EQ(id.rfind("Ann-Lee_", 0), 0u);
  EXPECT_EQ(multi.post("/users", json{{"username", "Ann Lee"}}).json_body(), (json{{"error", "Duplicate username."}}));
  EXPECT_EQ(multi.post("/users", json{{"username", "  "}}).json_body(), (json{{"error", "username not provided"}}));
  EXPECT_EQ(multi.post("/users", json{{"username", "__sys"}}).json_body(),
            (json{{"error", "System User prefix not allowed"}}));
  EXPECT_EQ(multi.get("/users").json_body()["users"][id], "Ann Lee");
  // Per-user settings by header; unknown and system users refused.
  EXPECT_EQ(multi.request("POST", "/settings/k", "1", {{"Comfy-User", id}}).status, 200);
  EXPECT_EQ(multi.request("GET", "/settings/k", "", {{"Comfy-User", id}}).json_body(), 1);
  EXPECT_EQ(multi.request("GET", "/settings", "", {{"Comfy-User", "ghost"}}).status, 401);
  EXPECT_EQ(multi.request("GET", "/settings", "", {{"Comfy-User", "__comfycpp"}}).status, 401);
  EXPECT_EQ(multi.request("GET", "/userdata/x.json", "", {{"Comfy-User", "ghost"}}).status, 500);
  EXPECT_EQ(multi.request("GET", "/v2/userdata", "", {{"Comfy-User", "ghost"}}).status, 403);
}

}  // namespace
}  // namespace comfy::testing
