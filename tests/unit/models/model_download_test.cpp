// The download manager against a local HTTP server (tests/support/http_test_server): verified
// downloads, resume after a dropped connection and after a restart, corrupt content refused,
// tokens only to their own host, 401/403, out of space, cancel, refused names and hosts.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <random>

#include "core/error.h"
#include "io/png.h"
#include "io/webp.h"
#include "models/folder_paths.h"
#include "models/missing_models.h"
#include "models/model_download.h"
#include "routes/fixture.h"
#include "support/http_test_server.h"

namespace comfy {
namespace {

namespace fs = std::filesystem;
using test::HttpTestServer;
using test::TestResource;
using test::random_bytes;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ModelDownload : public ::testing::Test {
 protected:
  void SetUp() override {
    base = fs::temp_directory_path() / ("comfy_dl_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base);
    fs::create_directories(base / "models" / "checkpoints");
    folders = std::make_unique<FolderPaths>(base);
    content = random_bytes(256 * 1024, 7);
    fs::path tmp = base / "content.bin";
    std::ofstream(tmp, std::ios::binary) << content;
    content_sha = sha256_of_file(tmp);
    fs::remove(tmp);
  }
  void TearDown() override { fs::remove_all(base); }

  DownloadOptions options() {
    DownloadOptions o;
    o.retry_delay = std::chrono::milliseconds(1);
    o.max_retries = 2;
    return o;
  }
  fs::path checkpoints() const { return base / "models" / "checkpoints"; }

  fs::path base;
  std::unique_ptr<FolderPaths> folders;
  std::string content, content_sha;
};

TEST_F(ModelDownload, VerifiedFileIsRenamedIntoPlace) {
  HttpTestServer server;
  server.set("/m.safetensors", TestResource::file(content));
  DownloadManager dm(*folders, options());
  std::string id = dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", content_sha, content.size()});
  DownloadState st = dm.wait(id);
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  EXPECT_EQ(st.sha256, content_sha);
  EXPECT_EQ(read_file(checkpoints() / "m.safetensors"), content);
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors.part"));
  EXPECT_EQ(folders->get_filename_list("checkpoints"), std::vector<std::string>{"m.safetensors"});
}

TEST_F(ModelDownload, PartFileIsNotListedByLoaders) {
  std::ofstream(checkpoints() / "x.safetensors.part") << "half";
  EXPECT_TRUE(folders->get_filename_list("checkpoints").empty());
}

TEST_F(ModelDownload, DroppedConnectionResumesWithRange) {
  HttpTestServer server;
  TestResource r = TestResource::file(content);
  r.drop_after = 100000;
  r.drop_times = 1;
  server.set("/m.safetensors", r);
  DownloadManager dm(*folders, options());
  DownloadState st = dm.wait(dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", content_sha, {}}));
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  EXPECT_EQ(st.attempts, 2);
  EXPECT_EQ(read_file(checkpoints() / "m.safetensors"), content);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].headers.count("range"), 0u);
  EXPECT_EQ(reqs[1].headers["range"], "bytes=100000-");
}

TEST_F(ModelDownload, ServerIgnoringRangeStartsOver) {
  HttpTestServer server;
  TestResource r = TestResource::file(content);
  r.ranges = false;
  r.drop_after = 50000;
  r.drop_times = 1;
  server.set("/m.safetensors", r);
  DownloadManager dm(*folders, options());
  DownloadState st = dm.wait(dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", content_sha, {}}));
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  EXPECT_EQ(read_file(checkpoints() / "m.safetensors"), content);
}

TEST_F(ModelDownload, InterruptedByRestartResumesFromPersistedQueue) {
  HttpTestServer server;
  TestResource r = TestResource::file(content);
  r.chunk = 4096;
  r.delay = std::chrono::milliseconds(10);  // about 0.6 s for the whole file
  server.set("/m.safetensors", r);
  DownloadOptions o = options();
  o.queue_file = base / "user" / "downloads.json";
  std::string id;
  {
    DownloadManager dm(*folders, o);
    std::promise<void> started;
    std::atomic<bool> once{false};
    dm.set_listener([&](const DownloadState& s) {
      if (s.bytes_done > 0 && !once.exchange(true)) started.set_value();
    });
    id = dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", content_sha, {}});
    started.get_future().wait();
  }  // stopped mid-transfer
  ASSERT_FALSE(fs::exists(checkpoints() / "m.safetensors"));
  ASSERT_TRUE(fs::exists(checkpoints() / "m.safetensors.part"));
  uint64_t part = fs::file_size(checkpoints() / "m.safetensors.part");
  ASSERT_GT(part, 0u);
  ASSERT_LT(part, content.size());
  std::string queue = read_file(o.queue_file);
  EXPECT_NE(queue.find("\"queued\""), std::string::npos);

  DownloadManager dm2(*folders, o);  // picks the queue up by itself
  DownloadState st = dm2.wait(id);
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  EXPECT_EQ(read_file(checkpoints() / "m.safetensors"), content);
  auto reqs = server.requests();
  ASSERT_GE(reqs.size(), 2u);
  unsigned long long from = 0;
  ASSERT_EQ(std::sscanf(reqs.back().headers["range"].c_str(), "bytes=%llu-", &from), 1);
  EXPECT_GE(from, part);
}

TEST_F(ModelDownload, CorruptContentIsRefusedAndRemoved) {
  HttpTestServer server;
  std::string wrong = content;
  wrong[1234] ^= 0x55;
  server.set("/m.safetensors", TestResource::file(wrong));
  DownloadManager dm(*folders, options());
  DownloadState st = dm.wait(dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", content_sha, {}}));
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_NE(st.error.find("SHA-256 mismatch"), std::string::npos) << st.error;
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors"));
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors.part"));
}

TEST_F(ModelDownload, WrongSizeIsRefused) {
  HttpTestServer server;
  server.set("/m.safetensors", TestResource::file(content));
  DownloadManager dm(*folders, options());
  DownloadState st = dm.wait(dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", "", content.size() + 1}));
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_NE(st.error.find("expected"), std::string::npos) << st.error;
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors"));
}

TEST_F(ModelDownload, TokenGoesOnlyToItsHostNeverAcrossARedirect) {
  HttpTestServer a("127.0.0.1"), b("127.0.0.2");
  TestResource gated = TestResource::file(content);
  gated.require_bearer = "s3cret";
  a.set("/gated.safetensors", gated);
  b.set("/cdn.safetensors", TestResource::file(content));
  TestResource redirect;
  redirect.status = 302;
  redirect.location = b.url("/cdn.safetensors");
  a.set("/redir.safetensors", redirect);
  DownloadOptions o = options();
  o.host_tokens = {{"127.0.0.1", "s3cret"}};
  DownloadManager dm(*folders, o);
  DownloadState st = dm.wait(dm.enqueue({a.url("/gated.safetensors"), "checkpoints", "", content_sha, {}}));
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  st = dm.wait(dm.enqueue({a.url("/redir.safetensors"), "checkpoints", "", content_sha, {}}));
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  auto ra = a.requests();
  ASSERT_EQ(ra.size(), 2u);
  EXPECT_EQ(ra[0].headers["authorization"], "Bearer s3cret");
  EXPECT_EQ(ra[1].headers["authorization"], "Bearer s3cret");
  auto rb = b.requests();
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_EQ(rb[0].headers.count("authorization"), 0u);
}

TEST_F(ModelDownload, UnauthorizedAndForbiddenSayWhatToDo) {
  HttpTestServer server;
  TestResource gated = TestResource::file(content);
  gated.require_bearer = "right";
  server.set("/gated.safetensors", gated);
  {
    DownloadManager dm(*folders, options());
    DownloadState st = dm.wait(dm.enqueue({server.url("/gated.safetensors"), "checkpoints", "", "", {}}));
    EXPECT_EQ(st.status, DownloadStatus::failed);
    EXPECT_NE(st.error.find("HTTP 401"), std::string::npos) << st.error;
    EXPECT_NE(st.error.find("HF_TOKEN"), std::string::npos) << st.error;
    EXPECT_EQ(st.attempts, 1);  // not retried
  }
  DownloadOptions o = options();
  o.host_tokens = {{"127.0.0.1", "wrong-token-value"}};
  DownloadManager dm(*folders, o);
  DownloadState st = dm.wait(dm.enqueue({server.url("/gated.safetensors"), "checkpoints", "", "", {}}));
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_NE(st.error.find("HTTP 403"), std::string::npos) << st.error;
  EXPECT_EQ(st.error.find("wrong-token-value"), std::string::npos);
  EXPECT_EQ(st.to_json().dump().find("wrong-token-value"), std::string::npos);
  EXPECT_FALSE(fs::exists(checkpoints() / "gated.safetensors.part"));
}

TEST_F(ModelDownload, OutOfSpaceIsAClearError) {
  HttpTestServer server;
  server.set("/m.safetensors", TestResource::file(content));
  DownloadOptions o = options();
  o.free_space = [](const fs::path&) { return std::optional<uint64_t>(1000); };
  DownloadManager dm(*folders, o);
  // Known size: refused at once.
  try {
    dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", "", content.size()});
    FAIL() << "expected an out-of-space error";
  } catch (const ComfyError& e) {
    EXPECT_NE(std::string(e.what()).find("not enough free space"), std::string::npos) << e.what();
  }
  // Size from the server's answer.
  DownloadState st = dm.wait(dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", "", {}}));
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_NE(st.error.find("not enough free space"), std::string::npos) << st.error;
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors"));
}

TEST_F(ModelDownload, CancelStopsAndRemovesThePart) {
  HttpTestServer server;
  TestResource r = TestResource::file(content);
  r.chunk = 1024;
  r.delay = std::chrono::milliseconds(20);
  server.set("/m.safetensors", r);
  DownloadManager dm(*folders, options());
  std::promise<void> started;
  std::atomic<bool> once{false};
  dm.set_listener([&](const DownloadState& s) {
    if (s.bytes_done > 0 && !once.exchange(true)) started.set_value();
  });
  std::string id = dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", "", {}});
  started.get_future().wait();
  EXPECT_TRUE(dm.cancel(id));
  DownloadState st = dm.wait(id);
  EXPECT_EQ(st.status, DownloadStatus::cancelled);
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors"));
  EXPECT_FALSE(fs::exists(checkpoints() / "m.safetensors.part"));
  EXPECT_EQ(st.asset_download_message()["status"], "failed");
}

TEST_F(ModelDownload, RefusesUnsafeNamesFormatsFoldersAndHosts) {
  DownloadManager dm(*folders, options());
  auto refused = [&](DownloadRequest r, const std::string& words) {
    try {
      dm.enqueue(r);
      ADD_FAILURE() << "accepted " << r.url << " " << r.filename;
    } catch (const ComfyError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  const std::string u = "http://127.0.0.1:9/x.safetensors";
  refused({u, "checkpoints", "../evil.safetensors", "", {}}, "refused filename");
  refused({u, "checkpoints", "sub/../evil.safetensors", "", {}}, "refused filename");
  refused({u, "checkpoints", "sub\\evil.safetensors", "", {}}, "refused filename");
  refused({u, "checkpoints", "sub//evil.safetensors", "", {}}, "refused filename");
  refused({u, "checkpoints", ".hidden/evil.safetensors", "", {}}, "refused filename");
  refused({u, "checkpoints", "/tmp/evil.safetensors", "", {}}, "refused filename");
  refused({"http://127.0.0.1:9/a/..%2F..%2Fevil.safetensors", "checkpoints", "", "", {}}, "refused filename");
  refused({u, "checkpoints", "model.ckpt", "", {}}, "pickle");
  refused({u, "checkpoints", "notes.txt", "", {}}, "only .safetensors");
  refused({u, "nonexistent", "", "", {}}, "unknown model folder");
  refused({u, "custom_nodes", "", "", {}}, "lists every file");
  refused({"ftp://127.0.0.1/x.safetensors", "checkpoints", "", "", {}}, "only http and https");
  refused({u, "checkpoints", "", "abc", {}}, "not a SHA-256");
  DownloadRequest ok{u, "checkpoints", "model.ckpt", "", {}};
  EXPECT_EQ(checked_download_filename(ok, true), "model.ckpt");
  EXPECT_EQ(checked_download_filename({u, "checkpoints", "", "", {}}, false), "x.safetensors");

  DownloadOptions o = options();
  o.allowed_hosts = {"huggingface.co"};
  DownloadManager limited(*folders, o);
  EXPECT_THROW(limited.enqueue({u, "checkpoints", "", "", {}}), ComfyError);
  EXPECT_TRUE(host_matches("cdn-lfs.huggingface.co", "huggingface.co"));
  EXPECT_FALSE(host_matches("evilhuggingface.co", "huggingface.co"));
  EXPECT_EQ(raw_file_url("https://huggingface.co/org/repo/blob/main/m.safetensors"),
            "https://huggingface.co/org/repo/resolve/main/m.safetensors");
  EXPECT_EQ(raw_file_url("https://example.com/blob/m.safetensors"), "https://example.com/blob/m.safetensors");
}

TEST_F(ModelDownload, RedirectOutsideTheAllowListIsRefused) {
  HttpTestServer a("127.0.0.1"), b("127.0.0.2");
  b.set("/x.safetensors", TestResource::file(content));
  TestResource redirect;
  redirect.status = 302;
  redirect.location = b.url("/x.safetensors");
  a.set("/x.safetensors", redirect);
  DownloadOptions o = options();
  o.allowed_hosts = {"127.0.0.1"};
  DownloadManager dm(*folders, o);
  DownloadState st = dm.wait(dm.enqueue({a.url("/x.safetensors"), "checkpoints", "", "", {}}));
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_NE(st.error.find("allow-list"), std::string::npos) << st.error;
  EXPECT_TRUE(b.requests().empty());
}

TEST_F(ModelDownload, ServerErrorsAreRetriedThenReported) {
  HttpTestServer server;
  TestResource r;
  r.status = 503;
  server.set("/m.safetensors", r);
  DownloadManager dm(*folders, options());
  DownloadState st = dm.wait(dm.enqueue({server.url("/m.safetensors"), "checkpoints", "", "", {}}));
  EXPECT_EQ(st.status, DownloadStatus::failed);
  EXPECT_EQ(st.attempts, 3);
  EXPECT_EQ(server.requests().size(), 3u);
  EXPECT_NE(st.error.find("HTTP 503"), std::string::npos);
}

TEST_F(ModelDownload, ContentDispositionNamesAreParsedAndStrippedOfPaths) {
  EXPECT_EQ(content_disposition_filename("attachment; filename=\"model.safetensors\""), "model.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename=plain.safetensors"), "plain.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename*=UTF-8''caf%C3%A9%20v2.safetensors; "
                                         "filename=\"fallback.safetensors\""),
            "caf\xC3\xA9 v2.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename=\"fallback.safetensors\"; "
                                         "filename*=utf-8''preferred.safetensors"),
            "preferred.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename=\"../../etc/evil.safetensors\""), "evil.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename=\"C:\\\\models\\\\win.safetensors\""), "win.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename=\"a\\\"b.safetensors\""), "a\"b.safetensors");
  EXPECT_EQ(content_disposition_filename("attachment; filename=\"..\""), "");
  EXPECT_EQ(content_disposition_filename("inline"), "");
  EXPECT_EQ(content_disposition_filename(""), "");
}

TEST_F(ModelDownload, UrlWithoutAFileNameIsNamedByContentDisposition) {
  HttpTestServer server;
  TestResource r = TestResource::file(content);
  r.headers = {{"Content-Disposition", "attachment; filename=\"../sub/civitai_model.safetensors\""}};
  server.set("/api/download/models/12345", r);
  DownloadManager dm(*folders, options());
  std::string id = dm.enqueue({server.url("/api/download/models/12345?type=Model"), "checkpoints", "", content_sha, {}});
  EXPECT_TRUE(dm.get(id)->target.empty());  // named once the server answers
  DownloadState st = dm.wait(id);
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  EXPECT_EQ(st.target, checkpoints() / "civitai_model.safetensors");  // no path parts from the server
  EXPECT_EQ(st.request.filename, "civitai_model.safetensors");
  EXPECT_EQ(read_file(checkpoints() / "civitai_model.safetensors"), content);
  EXPECT_EQ(st.to_json()["filename"], "civitai_model.safetensors");
  EXPECT_FALSE(fs::exists(base / "models" / "sub"));
}

TEST_F(ModelDownload, ServerNamesAreCheckedLikeGivenNames) {
  HttpTestServer server;
  TestResource none = TestResource::file(content);
  server.set("/download/1", none);
  TestResource pickle = TestResource::file(content);
  pickle.headers = {{"Content-Disposition", "attachment; filename*=UTF-8''model.ckpt"}};
  server.set("/download/2", pickle);
  std::ofstream(checkpoints() / "taken.safetensors") << "mine";
  TestResource taken = TestResource::file(content);
  taken.headers = {{"Content-Disposition", "attachment; filename=taken.safetensors"}};
  server.set("/download/3", taken);
  DownloadManager dm(*folders, options());
  DownloadState a = dm.wait(dm.enqueue({server.url("/download/1"), "checkpoints", "", "", {}}));
  EXPECT_EQ(a.status, DownloadStatus::failed);
  EXPECT_NE(a.error.find("Content-Disposition"), std::string::npos) << a.error;
  DownloadState b = dm.wait(dm.enqueue({server.url("/download/2"), "checkpoints", "", "", {}}));
  EXPECT_EQ(b.status, DownloadStatus::failed);
  EXPECT_NE(b.error.find("pickle"), std::string::npos) << b.error;
  DownloadState c = dm.wait(dm.enqueue({server.url("/download/3"), "checkpoints", "", "", {}}));
  EXPECT_EQ(c.status, DownloadStatus::failed);
  EXPECT_NE(c.error.find("already exists"), std::string::npos) << c.error;
  EXPECT_EQ(read_file(checkpoints() / "taken.safetensors"), "mine");
  // Nothing else was written: no part files, no other names.
  std::vector<std::string> left;
  for (auto& f : fs::recursive_directory_iterator(checkpoints())) left.push_back(f.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"taken.safetensors"}) << ::testing::PrintToString(left);
}

TEST_F(ModelDownload, FilenameWithASubfolderCreatesItInsideTheModelFolder) {
  HttpTestServer server;
  server.set("/x.safetensors", TestResource::file(content));
  DownloadManager dm(*folders, options());
  DownloadState st = dm.wait(dm.enqueue({server.url("/x.safetensors"), "checkpoints", "sd15/styles/x.safetensors",
                                         content_sha, {}}));
  ASSERT_EQ(st.status, DownloadStatus::completed) << st.error;
  EXPECT_EQ(st.target, checkpoints() / "sd15" / "styles" / "x.safetensors");
  EXPECT_EQ(read_file(st.target), content);
  EXPECT_EQ(folders->get_filename_list("checkpoints"), std::vector<std::string>{"sd15/styles/x.safetensors"});
  EXPECT_EQ(st.to_json()["filename"], "sd15/styles/x.safetensors");
}

TEST_F(ModelDownload, TokensComeFromTheEnvironmentAndTheTokensFile) {
  ::setenv("HF_TOKEN", "hf-value", 1);
  ::setenv("COMFYCPP_DOWNLOAD_TOKENS", "Example.com=ex-value, other.org=o-value", 1);
  fs::path file = base / "tokens.json";
  std::ofstream(file) << R"({"files.local": "local-value"})";
  DownloadOptions o = DownloadOptions::from_env(file);
  ::unsetenv("HF_TOKEN");
  ::unsetenv("COMFYCPP_DOWNLOAD_TOKENS");
  EXPECT_EQ(o.host_tokens["huggingface.co"], "hf-value");
  EXPECT_EQ(o.host_tokens["example.com"], "ex-value");
  EXPECT_EQ(o.host_tokens["other.org"], "o-value");
  EXPECT_EQ(o.host_tokens["files.local"], "local-value");
  EXPECT_EQ(o.host_tokens.count("civitai.com"), 0u);
}

TEST(ModelDownloadRoutes, DownloadMissingListCancelAndProgressMessages) {
  HttpTestServer files;
  std::string body = random_bytes(64 * 1024, 3);
  files.set("/vae.safetensors", TestResource::file(body));
  comfy::testing::TestServer ts;
  comfy::testing::WsClient ws(ts.port, "/ws?clientId=dl");
  ASSERT_TRUE(ws.next_of_type("status"));

  auto r = ts.post("/api/models/download", json{{"url", files.url("/vae.safetensors")}, {"directory", "vae"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string id = r.json_body()["id"];
  std::optional<json> msg;
  do {
    msg = ws.next_of_type("asset_download");
    ASSERT_TRUE(msg) << "no asset_download message";
    EXPECT_EQ((*msg)["data"]["task_id"], id);
  } while ((*msg)["data"]["status"] != "completed" && (*msg)["data"]["status"] != "failed");
  EXPECT_EQ((*msg)["data"]["status"], "completed");
  EXPECT_EQ((*msg)["data"]["bytes_downloaded"], body.size());
  EXPECT_EQ((*msg)["data"]["asset_name"], "vae.safetensors");
  EXPECT_EQ(read_file(ts.env.dir / "models" / "vae" / "vae.safetensors"), body);

  auto one = ts.get("/api/models/downloads/" + id);
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json_body()["status"], "completed");
  auto all = ts.get("/api/models/downloads");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.json_body().size(), 1u);
  EXPECT_EQ(ts.get("/api/models/downloads/nope").status, 404);
  EXPECT_EQ(ts.post("/api/models/downloads/" + id + "/cancel", json::object()).json_body()["cancelled"], false);
  // The folder listing still answers.
  EXPECT_EQ(ts.get("/api/models/vae").json_body(), json::array({"vae.safetensors"}));

  auto bad = ts.post("/api/models/download", json{{"url", files.url("/vae.safetensors")}, {"directory", "vae"},
                                                  {"filename", "../../evil.safetensors"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.json_body()["error"].get<std::string>().find("refused filename"), std::string::npos);

  json workflow = {{"1", {{"class_type", "VAELoader"}, {"inputs", {{"vae_name", "VAE.safetensors"}}}}},
                   {"2", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "none.safetensors"}}}}}};
  auto report = ts.post("/api/models/missing", json{{"workflow", workflow}});
  ASSERT_EQ(report.status, 200) << report.body;
  json rep = report.json_body();
  ASSERT_EQ(rep["models"].size(), 2u);
  EXPECT_EQ(rep["models"][0]["status"], "found_elsewhere");
  EXPECT_EQ(rep["models"][0]["found_name"], "vae.safetensors");
  EXPECT_EQ(rep["models"][1]["status"], "missing");
  EXPECT_EQ(rep["missing"], 1);
}

// POST /api/models/missing with an image body: the PNG's tEXt chunks as SaveImage writes them
// (io::encode_png with "prompt" and "workflow"), a multipart upload of it, and a WebP with the
// EXIF entries SaveAnimatedWEBP writes.
TEST(ModelDownloadRoutes, MissingAcceptsAPngOrWebpCarryingTheWorkflow) {
  HttpTestServer files;
  std::string vae = random_bytes(16 * 1024, 9);
  files.set("/ae.safetensors", TestResource::file(vae));
  comfy::testing::TestServer ts;
  fs::create_directories(ts.env.dir / "models" / "checkpoints");
  std::ofstream(ts.env.dir / "models" / "checkpoints" / "present.safetensors") << "x";
  json prompt = {{"1", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "present.safetensors"}}}}},
                 {"2", {{"class_type", "VAELoader"}, {"inputs", {{"vae_name", "sd/ae.safetensors"}}}}}};
  json workflow = {{"nodes", json::array()},
                   {"models", {{{"name", "sd/ae.safetensors"}, {"directory", "vae"}, {"url", files.url("/ae.safetensors")}}}}};
  std::vector<uint8_t> pixels(4 * 4 * 3, 128);
  std::vector<uint8_t> png = io::encode_png(pixels.data(), 4, 4, 3, 4, {{"prompt", prompt.dump()}, {"workflow", workflow.dump()}});
  std::string png_body(png.begin(), png.end());

  auto check = [&](const comfy::testing::HttpResult& r, const std::string& vae_status) {
    ASSERT_EQ(r.status, 200) << r.body;
    json rep = r.json_body();
    ASSERT_EQ(rep["models"].size(), 2u) << rep.dump();
    EXPECT_EQ(rep["models"][0]["status"], "found");
    EXPECT_EQ(rep["models"][1]["status"], vae_status);
    EXPECT_EQ(rep["models"][1]["url"], files.url("/ae.safetensors"));
  };
  check(ts.request("POST", "/api/models/missing", png_body, {{"Content-Type", "image/png"}}), "missing");

  std::string boundary = "----comfycpp-test";
  std::string form = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"image\"; filename=\"ComfyUI_00001_.png\"\r\n"
                     "Content-Type: image/png\r\n\r\n" + png_body + "\r\n--" + boundary + "--\r\n";
  check(ts.request("POST", "/api/models/missing", form, {{"Content-Type", "multipart/form-data; boundary=" + boundary}}),
        "missing");

  io::WebpAnimOptions wo;
  wo.exif = io::exif_ascii_block({{0x0110, "prompt:" + prompt.dump()}, {0x010F, "workflow:" + workflow.dump()}});
  std::vector<uint8_t> webp = io::encode_animated_webp({pixels.data()}, 4, 4, 3, wo);
  // With ?download=true the missing VAE is fetched into vae/sd/ from the workflow's url.
  auto r = ts.request("POST", "/api/models/missing?download=true", std::string(webp.begin(), webp.end()),
                      {{"Content-Type", "image/webp"}});
  check(r, "download_queued");
  std::string id = r.json_body()["models"][1]["download_id"];
  json state;
  for (int i = 0; i < 500; ++i) {  // polls until finished; no timing is asserted
    state = ts.get("/api/models/downloads/" + id).json_body();
    if (state["status"] == "completed" || state["status"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(state["status"], "completed") << state.dump();
  EXPECT_EQ(read_file(ts.env.dir / "models" / "vae" / "sd" / "ae.safetensors"), vae);

  auto none = ts.request("POST", "/api/models/missing", png_body.substr(0, 8) + "junk", {{"Content-Type", "image/png"}});
  EXPECT_EQ(none.status, 400);
  std::vector<uint8_t> bare = io::encode_png(pixels.data(), 4, 4, 3, 4);
  auto plain = ts.request("POST", "/api/models/missing", std::string(bare.begin(), bare.end()), {{"Content-Type", "image/png"}});
  EXPECT_EQ(plain.status, 400);
  EXPECT_NE(plain.json_body()["error"].get<std::string>().find("no ComfyUI prompt or workflow"), std::string::npos)
      << plain.body;
}

TEST(ModelDownloadRoutes, ServerResumesItsPersistedQueueAtStart) {
  HttpTestServer files;
  std::string body = random_bytes(32 * 1024, 5);
  files.set("/lora.safetensors", TestResource::file(body));
  fs::path base = comfy::testing::make_temp_dir("dlresume");
  fs::create_directories(base / "user" / "__comfycpp");
  fs::create_directories(base / "models" / "loras");
  std::ofstream(base / "models" / "loras" / "lora.safetensors.part", std::ios::binary) << body.substr(0, 1000);
  json entry = {{"id", "resume1"}, {"url", files.url("/lora.safetensors")}, {"directory", "loras"},
                {"filename", "lora.safetensors"}, {"sha256", ""}, {"status", "running"}};
  json queue = {{"version", 1}, {"downloads", json::array({entry})}};
  std::ofstream(base / "user" / "__comfycpp" / "downloads.json") << queue.dump();
  {
    comfy::testing::TestServer ts({}, base);
    json state;
    for (int i = 0; i < 500; ++i) {  // polls until finished; no timing is asserted
      state = ts.get("/api/models/downloads/resume1").json_body();
      if (state["status"] == "completed" || state["status"] == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(state["status"], "completed") << state.dump();
    EXPECT_EQ(read_file(base / "models" / "loras" / "lora.safetensors"), body);
    auto reqs = files.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].headers["range"], "bytes=1000-");
  }
  fs::remove_all(base);
}

}  // namespace
}  // namespace comfy
