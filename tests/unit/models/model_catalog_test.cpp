// The model catalog: the shipped file is valid and cites a source for every size and hash; bad
// entries ("..", absolute paths, backslashes, bad hashes) are refused naming the entry; search;
// user catalogs override shipped entries by name; install downloads into the entry's folder (and
// subfolder), verifies the hash, and skips a file already present with that hash. The catalog
// routes: GET /api/models/catalog and POST /api/models/catalog/install against files served by
// the local test server.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "models/folder_paths.h"
#include "models/missing_models.h"
#include "models/model_catalog.h"
#include "models/model_download.h"
#include "routes/fixture.h"
#include "support/http_test_server.h"
#include "support/shell.h"
#include "text/data_paths.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;
using test::HttpTestServer;
using test::TestResource;
using test::random_bytes;

std::string sha256_of(const std::string& bytes, const fs::path& scratch) {
  std::ofstream(scratch, std::ios::binary) << bytes;
  std::string d = sha256_of_file(scratch);
  fs::remove(scratch);
  return d;
}

json entry(const std::string& name, const std::string& filename, const std::string& url = "https://example.com/m.safetensors") {
  return json{{"name", name}, {"type", "checkpoint"}, {"base", "SD1"},   {"folder", "checkpoints"},
              {"filename", filename}, {"url", url}, {"size", nullptr}, {"sha256", nullptr},
              {"source", nullptr}, {"description", "a test model"}};
}

class ModelCatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base = fs::temp_directory_path() / ("comfy_catalog_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base);
    fs::create_directories(base / "models" / "checkpoints");
    fs::create_directories(base / "user");
    folders = std::make_unique<FolderPaths>(base);
    body = random_bytes(96 * 1024, 11);
    body_sha = sha256_of(body, base / "scratch");
  }
  void TearDown() override { fs::remove_all(base); }

  DownloadOptions options() {
    DownloadOptions o;
    o.retry_delay = std::chrono::milliseconds(1);
    o.max_retries = 1;
    return o;
  }

  fs::path base;
  std::unique_ptr<FolderPaths> folders;
  std::string body, body_sha;
};

TEST_F(ModelCatalogTest, ShippedCatalogIsValidAndCitesWhereEachHashWasRead) {
  // Parsed strictly: a bad shipped entry throws here.
  auto entries = load_catalog_file(find_data_path("models/catalog.json"));
  EXPECT_GE(entries.size(), 12u);
  std::set<std::string> names;
  FolderPaths defaults(base);
  for (auto& e : entries) {
    EXPECT_TRUE(names.insert(e.name).second) << "duplicate name " << e.name;
    EXPECT_TRUE(defaults.has_folder(e.folder)) << e.name << ": unknown folder " << e.folder;
    EXPECT_FALSE(e.type.empty()) << e.name;
    EXPECT_FALSE(e.description.empty()) << e.name;
    if (!e.sha256.empty() || e.size) EXPECT_FALSE(e.source.empty()) << e.name << " has a hash or size but no source";
    EXPECT_EQ(e.url.rfind("https://", 0), 0u) << e.name;
  }
  for (const char* want : {"sd15-pruned-emaonly", "sdxl-base-1.0", "sd-vae-ft-mse", "controlnet-v11-sd15-canny-fp16",
                           "realesrgan-x4plus", "taesd-decoder"})
    EXPECT_TRUE(names.count(want)) << want;
}

TEST_F(ModelCatalogTest, UnsafeEntriesAreRefusedNamingTheEntry) {
  auto refused = [](const json& e, const std::string& words) {
    try {
      parse_catalog(json{{"models", json::array({e})}}, "test.json");
      ADD_FAILURE() << "accepted " << e.dump();
    } catch (const ComfyError& err) {
      std::string msg = err.what();
      EXPECT_NE(msg.find("test.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find("'" + e.value("name", "") + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find(words), std::string::npos) << msg;
    }
  };
  refused(entry("dots", "../../evil.safetensors"), "'..'");
  refused(entry("inner-dots", "sd15/../../evil.safetensors"), "'..'");
  refused(entry("absolute", "/etc/evil.safetensors"), "absolute");
  refused(entry("backslash", "sd15\\evil.safetensors"), "backslash");
  refused(entry("hidden", "sd15/.evil.safetensors"), "hidden");
  json bad_hash = entry("bad-hash", "x.safetensors");
  bad_hash["sha256"] = "1234";
  refused(bad_hash, "64 hex digits");
  refused(entry("ftp", "x.safetensors", "ftp://example.com/x.safetensors"), "http");
  json bad_size = entry("bad-size", "x.safetensors");
  bad_size["size"] = "big";
  refused(bad_size, "size");

  // Collecting instead of throwing: the good entry stays, the bad one is reported.
  std::vector<std::string> errors;
  auto got = parse_catalog(json::array({entry("good", "sd15/ok.safetensors"), entry("dots", "../x.safetensors")}),
                           "user.json", &errors);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].filename, "sd15/ok.safetensors");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("'dots'"), std::string::npos);
}

TEST_F(ModelCatalogTest, SearchMatchesEveryWordAnywhereBestFirst) {
  ModelCatalog c;
  json a = entry("sdxl-vae", "sdxl_vae.safetensors");
  a["type"] = "vae";
  a["base"] = "SDXL";
  json b = entry("sd15-base", "v1-5.safetensors");
  b["description"] = "Stable Diffusion 1.5";
  json d = entry("other", "vae-for-sdxl.safetensors");
  d["base"] = "SDXL";
  c.add(parse_catalog(json::array({a, b, d}), "t.json"));
  auto hits = c.search("SDXL vae");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].name, "sdxl-vae");  // both words in the name
  EXPECT_EQ(hits[1].name, "other");
  EXPECT_EQ(c.search("diffusion 1.5").size(), 1u);
  EXPECT_TRUE(c.search("nothing-like-this").empty());
  EXPECT_EQ(c.search("").size(), 3u);
  ASSERT_NE(c.find("SD15-BASE"), nullptr);
  ASSERT_NE(c.find("vae-for-sdxl.safetensors"), nullptr);
  EXPECT_EQ(c.find("vae-for-sdxl.safetensors")->name, "other");
  EXPECT_EQ(c.find("missing"), nullptr);
}

TEST_F(ModelCatalogTest, UserCatalogsOverrideShippedEntriesByName) {
  json mine = entry("sd15-pruned-emaonly", "mine/v1-5.safetensors", "https://example.com/mine.safetensors");
  std::ofstream(base / "user" / "catalog.json") << json{{"models", {mine}}}.dump();
  fs::create_directories(base / "catalogs");
  std::ofstream(base / "catalogs" / "a.json") << json::array({entry("from-extra-paths", "e.safetensors")}).dump();
  std::ofstream(base / "catalogs" / "broken.json") << "{ not json";
  folders->add_model_folder_path("catalogs", base / "catalogs");
  std::ofstream(base / "cli.json") << json::array({entry("from-cli", "c.safetensors"), entry("bad", "../c.safetensors")}).dump();
  std::vector<std::string> warnings;
  ModelCatalog c = ModelCatalog::load(*folders, {base / "cli.json"}, &warnings);
  const CatalogEntry* sd15 = c.find("sd15-pruned-emaonly");
  ASSERT_NE(sd15, nullptr);
  EXPECT_EQ(sd15->url, "https://example.com/mine.safetensors");
  EXPECT_EQ(sd15->origin, (base / "user" / "catalog.json").string());
  EXPECT_NE(c.find("sdxl-base-1.0"), nullptr);  // the shipped ones are still there
  EXPECT_NE(c.find("from-extra-paths"), nullptr);
  EXPECT_NE(c.find("from-cli"), nullptr);
  EXPECT_EQ(c.find("bad"), nullptr);
  ASSERT_EQ(warnings.size(), 2u);  // broken.json, and the bad entry of cli.json
  std::string all = warnings[0] + "\n" + warnings[1];
  EXPECT_NE(all.find("broken.json"), std::string::npos) << all;
  EXPECT_NE(all.find("'bad'"), std::string::npos) << all;
}

TEST_F(ModelCatalogTest, InstallDownloadsIntoTheSubfolderVerifiesAndSkipsWhenPresent) {
  HttpTestServer server;
  server.set("/files/model.safetensors", TestResource::file(body));
  json e = entry("test-model", "sd15/model.safetensors", server.url("/files/model.safetensors"));
  e["sha256"] = body_sha;
  e["size"] = body.size();
  ModelCatalog c;
  c.add(parse_catalog(json::array({e}), "t.json"));
  DownloadManager dm(*folders, options());

  CatalogInstall first = install_catalog_entry(*c.find("test-model"), *folders, dm);
  ASSERT_EQ(first.status, "queued") << first.message;
  DownloadState st = dm.wait(first.download_id);
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  fs::path file = base / "models" / "checkpoints" / "sd15" / "model.safetensors";
  EXPECT_EQ(st.target, file);
  EXPECT_EQ(sha256_of_file(file), body_sha);
  EXPECT_EQ(folders->get_filename_list("checkpoints"), std::vector<std::string>{"sd15/model.safetensors"});

  size_t requests = server.requests().size();
  CatalogInstall again = install_catalog_entry(*c.find("test-model"), *folders, dm);
  EXPECT_EQ(again.status, "present") << again.message;
  EXPECT_EQ(again.path, file.string());
  EXPECT_EQ(server.requests().size(), requests);

  // A different file under that name is left alone.
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "something else";
  CatalogInstall other = install_catalog_entry(*c.find("test-model"), *folders, dm);
  EXPECT_EQ(other.status, "failed");
  EXPECT_NE(other.message.find("left alone"), std::string::npos) << other.message;
  EXPECT_EQ(server.requests().size(), requests);
}

TEST_F(ModelCatalogTest, InstallWithTheWrongHashIsRefusedAndLeavesNothing) {
  HttpTestServer server;
  server.set("/m.safetensors", TestResource::file(body));
  json e = entry("wrong-hash", "m.safetensors", server.url("/m.safetensors"));
  e["sha256"] = std::string(64, 'a');
  auto entries = parse_catalog(json::array({e}), "t.json");
  DownloadManager dm(*folders, options());
  CatalogInstall r = install_catalog_entry(entries[0], *folders, dm);
  ASSERT_EQ(r.status, "queued");
  DownloadState st = dm.wait(r.download_id);
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_NE(st.error.find("SHA-256 mismatch"), std::string::npos) << st.error;
  EXPECT_TRUE(fs::is_empty(base / "models" / "checkpoints"));
}

TEST(ModelCatalogRoutes, SearchInstallAndPresent) {
  HttpTestServer files;
  std::string body = random_bytes(48 * 1024, 21);
  files.set("/lora.safetensors", TestResource::file(body));
  fs::path base = comfy::testing::make_temp_dir("catalogroutes");
  fs::create_directories(base / "user");
  std::string sha = sha256_of(body, base / "scratch");
  json e = entry("route-test-lora", "styles/route.safetensors", files.url("/lora.safetensors"));
  e["type"] = "lora";
  e["folder"] = "loras";
  e["sha256"] = sha;
  e["size"] = body.size();
  std::ofstream(base / "user" / "catalog.json") << json{{"models", {e, entry("bad", "../x.safetensors")}}}.dump();
  {
    comfy::testing::TestServer ts({}, base);
    auto search = ts.get("/api/models/catalog?q=route%20lora");
    ASSERT_EQ(search.status, 200) << search.body;
    json found = search.json_body();
    ASSERT_EQ(found["models"].size(), 1u) << found.dump();
    EXPECT_EQ(found["models"][0]["name"], "route-test-lora");
    EXPECT_TRUE(found["models"][0]["installed"].is_null());
    bool warned = false;
    for (auto& w : found["warnings"]) warned |= w.get<std::string>().find("'bad'") != std::string::npos;
    EXPECT_TRUE(warned) << found["warnings"].dump();
    EXPECT_GE(ts.get("/api/models/catalog").json_body()["models"].size(), 13u);  // shipped + the user's

    EXPECT_EQ(ts.post("/api/models/catalog/install", json{{"name", "no-such-model"}}).status, 404);
    auto r = ts.post("/api/models/catalog/install", json{{"name", "route-test-lora"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json_body()["status"], "queued");
    std::string id = r.json_body()["download_id"];
    json state;
    for (int i = 0; i < 500; ++i) {  // polls until finished; no timing is asserted
      state = ts.get("/api/models/downloads/" + id).json_body();
      if (state["status"] == "completed" || state["status"] == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(state["status"], "completed") << state.dump();
    EXPECT_EQ(state["filename"], "styles/route.safetensors");
    EXPECT_TRUE(fs::exists(base / "models" / "loras" / "styles" / "route.safetensors"));
    auto again = ts.post("/api/models/catalog/install", json{{"name", "route-test-lora"}});
    EXPECT_EQ(again.json_body()["status"], "present") << again.body;
    EXPECT_FALSE(ts.get("/api/models/catalog?q=route-test-lora").json_body()["models"][0]["installed"].is_null());
  }
  fs::remove_all(base);
}

// A model still missing after resolution names the catalog entry that has its folder and file name.
TEST(ModelCatalogRoutes, MissingReportNamesTheCatalogEntryThatHasTheFile) {
  comfy::testing::TestServer ts;
  json workflow = {
      {"1", {{"class_type", "ControlNetLoader"}, {"inputs", {{"control_net_name", "sd15/control_v11p_sd15_canny_fp16.safetensors"}}}}},
      {"2", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "unknown.safetensors"}}}}},
      {"3", {{"class_type", "VAELoader"}, {"inputs", {{"vae_name", "vae-ft-mse-840000-ema-pruned.safetensors"}}}}}};
  auto r = ts.post("/api/models/missing", json{{"workflow", workflow}});
  ASSERT_EQ(r.status, 200) << r.body;
  json rep = r.json_body();
  ASSERT_EQ(rep["models"].size(), 3u) << rep.dump();
  EXPECT_EQ(rep["models"][0]["catalog"], "controlnet-v11-sd15-canny-fp16");
  EXPECT_TRUE(rep["models"][1]["catalog"].is_null());
  EXPECT_EQ(rep["models"][2]["catalog"], "sd-vae-ft-mse");

  // Only for models still missing, and only in the same folder.
  ModelCatalog c;
  c.add(parse_catalog(json::array({entry("e", "sub/a.safetensors")}), "t.json"));
  json report = {{"models",
                  {{{"name", "a.safetensors"}, {"directory", "checkpoints"}, {"status", "found"}},
                   {{"name", "A.safetensors"}, {"directory", "checkpoints"}, {"status", "missing"}},
                   {{"name", "a.safetensors"}, {"directory", "loras"}, {"status", "missing"}}}}};
  annotate_missing_with_catalog(report, c);
  EXPECT_TRUE(report["models"][0]["catalog"].is_null());
  EXPECT_EQ(report["models"][1]["catalog"], "e");
  EXPECT_TRUE(report["models"][2]["catalog"].is_null());
}

// The real binary: `models catalog search` and `install` with --catalog and --base-directory.
TEST(ModelCatalogCli, SearchAndInstallFromACatalogFile) {
  using comfy::testing::q;
  using comfy::testing::run_shell;
  HttpTestServer files;
  std::string body = random_bytes(24 * 1024, 31);
  files.set("/cli.safetensors", TestResource::file(body));
  fs::path base = comfy::testing::make_temp_dir("catalogcli");
  std::string sha = sha256_of(body, base / "scratch");
  json e = entry("cli-test-vae", "cli/vae.safetensors", files.url("/cli.safetensors"));
  e["type"] = "vae";
  e["folder"] = "vae";
  e["sha256"] = sha;
  std::ofstream(base / "mine.json") << json{{"models", {e, entry("cli-bad", "/abs.safetensors")}}}.dump();
  const std::string common = " --catalog " + q(base / "mine.json") + " --base-directory " + q(base) + " --json";

  auto search = run_shell(std::string(COMFY_BINARY) + " models catalog search 'cli test'" + common + " 2>/dev/null");
  ASSERT_EQ(search.rc, 0) << search.out;
  json found = json::parse(search.out);
  ASSERT_EQ(found["models"].size(), 1u) << search.out;
  EXPECT_EQ(found["models"][0]["name"], "cli-test-vae");
  EXPECT_NE(found["warnings"].dump().find("'cli-bad'"), std::string::npos) << search.out;
  EXPECT_EQ(run_shell(std::string(COMFY_BINARY) + " models catalog search no-such-words" + common + " 2>/dev/null").rc, 1);

  auto install = run_shell(std::string(COMFY_BINARY) + " models catalog install cli-test-vae" + common + " 2>/dev/null");
  ASSERT_EQ(install.rc, 0) << install.out;
  EXPECT_EQ(json::parse(install.out)["status"], "completed") << install.out;
  fs::path file = base / "models" / "vae" / "cli" / "vae.safetensors";
  EXPECT_EQ(sha256_of_file(file), sha);
  auto again = run_shell(std::string(COMFY_BINARY) + " models catalog install cli-test-vae" + common + " 2>/dev/null");
  EXPECT_EQ(again.rc, 0);
  EXPECT_EQ(json::parse(again.out)["status"], "present") << again.out;
  EXPECT_EQ(run_shell(std::string(COMFY_BINARY) + " models catalog install cli-bad" + common + " 2>/dev/null").rc, 1);
  fs::remove_all(base);
}

}  // namespace
}  // namespace comfy
