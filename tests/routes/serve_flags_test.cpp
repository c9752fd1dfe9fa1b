// `comfycpp serve` flags with behaviour, run as a real process: --listen (a list, the flag alone,
// the 127.0.0.1 default), --enable-cors-header [ORIGIN], --max-upload-size, --disable-metadata,
// --log-stdout, --dont-print-server, --tls-keyfile/--tls-certfile (HTTPS and WSS on the port).
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <regex>

#include "routes/fixture.h"
#include "support/shell.h"

namespace comfy::testing {
namespace {

namespace fs = std::filesystem;

// `comfycpp serve --base-directory <temp> --port 0 ARGS...`, its stdout and stderr collected by a
// thread; the constructor waits for "Ready in" (30 s at most).
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args) : dir_(make_temp_dir("serve-flags")) {
    std::vector<std::string> argv = {COMFY_BINARY, "serve", "--base-directory", dir_.string(), "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    int out[2], err[2];
    if (::pipe(out) != 0 || ::pipe(err) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::close(out[0]), ::close(err[0]), ::close(out[1]), ::close(err[1]);
      std::vector<char*> cargs;
      for (auto& a : argv) cargs.push_back(a.data());
      cargs.push_back(nullptr);
      ::execv(cargs[0], cargs.data());
      ::_exit(127);
    }
    ::close(out[1]), ::close(err[1]);
    reader_ = std::thread([this, o = out[0], e = err[0]] { drain(o, e); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && !exited_) {
      if (all().find("Ready in") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::string text = all();
    static const std::regex kUrl(R"(To see the GUI go to: (https?)://(\[[^\]]+\]|[^:\s]+):(\d+))");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kUrl); it != std::sregex_iterator(); ++it) {
      scheme_ = (*it)[1].str();
      printed_.push_back((*it)[2].str());
      port_ = static_cast<uint16_t>(std::stoi((*it)[3].str()));
    }
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (reader_.joinable()) reader_.join();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  uint16_t port() const { return port_; }
  const std::string& scheme() const { return scheme_; }  // as printed: "http" or "https"
  const std::vector<std::string>& printed() const { return printed_; }
  const fs::path& dir() const { return dir_; }
  bool ready() const { return all().find("Ready in") != std::string::npos; }
  std::string out() const {
    std::lock_guard lock(mutex_);
    return out_;
  }
  std::string err() const {
    std::lock_guard lock(mutex_);
    return err_;
  }
  std::string all() const { return out() + err(); }

 private:
  void drain(int o, int e) {
    pollfd fds[2] = {{o, POLLIN, 0}, {e, POLLIN, 0}};
    int open = 2;
    char buf[4096];
    while (open > 0) {
      if (::poll(fds, 2, 1000) < 0) break;
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
          continue;
        }
        std::lock_guard lock(mutex_);
        (i == 0 ? out_ : err_).append(buf, static_cast<size_t>(n));
      }
    }
    exited_ = true;
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::string out_, err_;
  std::atomic<bool> exited_{false};
  uint16_t port_ = 0;
  std::string scheme_;
  std::vector<std::string> printed_;
};

bool answers(const std::string& address, uint16_t port) {
  try {
    return http_request_at(address, port, "GET", "/prompt").status == 200;
  } catch (const std::exception&) {
    return false;
  }
}

TEST(ServeFlags, ListensOnLoopbackOnlyByDefault) {
  ServeProcess p({});
  ASSERT_NE(p.port(), 0) << p.all();
  EXPECT_EQ(p.printed(), std::vector<std::string>{"127.0.0.1"});
  EXPECT_TRUE(answers("127.0.0.1", p.port()));
  EXPECT_FALSE(answers("::1", p.port()));
}

TEST(ServeFlags, ListenTakesACommaSeparatedList) {
  ServeProcess p({"--listen", "127.0.0.1,::1"});
  ASSERT_NE(p.port(), 0) << p.all();
  EXPECT_EQ(p.printed(), (std::vector<std::string>{"127.0.0.1", "[::1]"}));  // IPv6 printed in brackets
  EXPECT_TRUE(answers("127.0.0.1", p.port()));
  EXPECT_TRUE(answers("::1", p.port()));
}

TEST(ServeFlags, ListenAloneMeansEveryInterface) {
  ServeProcess p({"--listen", "--cpu"});  // a flag right after: --listen has no value
  ASSERT_NE(p.port(), 0) << p.all();
  EXPECT_EQ(p.printed(), (std::vector<std::string>{"0.0.0.0", "[::]"}));
  EXPECT_TRUE(answers("127.0.0.1", p.port()));
  EXPECT_TRUE(answers("::1", p.port()));
}

TEST(ServeFlags, CorsHeaderWithAnOrigin) {
  ServeProcess p({"--enable-cors-header", "http://app.example"});
  ASSERT_NE(p.port(), 0) << p.all();
  HttpResult r = http_request(p.port(), "GET", "/queue", "", {{"Origin", "http://elsewhere.example"}});
  EXPECT_EQ(r.status, 200);  // CORS replaces the origin check
  EXPECT_EQ(r.header("access-control-allow-origin"), "http://app.example");
  EXPECT_EQ(r.header("access-control-allow-headers"), "Content-Type, Authorization");
  HttpResult pre = http_request(p.port(), "OPTIONS", "/prompt", "", {{"Origin", "http://app.example"}});
  EXPECT_EQ(pre.status, 200);
  EXPECT_EQ(pre.header("access-control-allow-origin"), "http://app.example");
}

TEST(ServeFlags, CorsHeaderAloneAllowsEveryOrigin) {
  ServeProcess p({"--enable-cors-header"});
  ASSERT_NE(p.port(), 0) << p.all();
  HttpResult r = http_request(p.port(), "GET", "/queue", "", {{"Origin", "http://elsewhere.example"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("access-control-allow-origin"), "*");
}

TEST(ServeFlags, WithoutCorsForeignOriginsAreRefused) {
  ServeProcess p({});
  ASSERT_NE(p.port(), 0) << p.all();
  HttpResult r = http_request(p.port(), "GET", "/queue", "", {{"Origin", "http://elsewhere.example"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.header("access-control-allow-origin"), "");
}

TEST(ServeFlags, MaxUploadSizeLimitsBodies) {
  ServeProcess p({"--max-upload-size", "0.01"});  // 10485.76 -> 10486 bytes
  ASSERT_NE(p.port(), 0) << p.all();
  EXPECT_DOUBLE_EQ(http_get(p.port(), "/features").json_body()["max_upload_size"].get<double>(), 10485.76);
  auto [type, body] = multipart_body({{"image", "big.png", std::string(20000, 'x')}});
  EXPECT_EQ(http_request(p.port(), "POST", "/upload/image", body, {{"Content-Type", type}}).status, 413);
  EXPECT_FALSE(fs::exists(p.dir() / "input" / "big.png"));
  EXPECT_EQ(http_get(p.port(), "/prompt").status, 200);
}

// Runs EmptyImage -> SaveImage and returns the saved file's bytes.
std::string save_image(const ServeProcess& p) {
  json prompt{{"1", node("EmptyImage", {{"width", 8}, {"height", 8}, {"batch_size", 1}, {"color", 0}})},
              {"2", node("SaveImage", {{"filename_prefix", "meta"}, {"images", link("1")}})}};
  json body{{"prompt", prompt}, {"extra_data", {{"extra_pnginfo", {{"workflow", {{"nodes", json::array()}}}}}}}};
  HttpResult r = http_post_json(p.port(), "/prompt", body);
  if (r.status != 200) throw std::runtime_error(r.body);
  std::string id = r.json_body()["prompt_id"].get<std::string>();
  json entry;
  wait_for([&] {
    entry = http_get(p.port(), "/history/" + id).json_body();
    return entry.contains(id);
  });
  if (!entry.contains(id)) throw std::runtime_error("no history for " + id);
  std::string filename = entry[id]["outputs"]["2"]["images"][0]["filename"].get<std::string>();
  std::ifstream in(p.dir() / "output" / filename, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(ServeFlags, DisableMetadataSavesPlainPngs) {
  {
    ServeProcess p({});
    ASSERT_NE(p.port(), 0) << p.all();
    std::string png = save_image(p);
    ASSERT_EQ(png.substr(1, 3), "PNG");
    EXPECT_NE(png.find("tEXtprompt"), std::string::npos);
    EXPECT_NE(png.find("tEXtworkflow"), std::string::npos);
  }
  ServeProcess p({"--disable-metadata"});
  ASSERT_NE(p.port(), 0) << p.all();
  std::string png = save_image(p);
  ASSERT_EQ(png.substr(1, 3), "PNG");
  EXPECT_EQ(png.find("tEXt"), std::string::npos);
}

TEST(ServeFlags, LogStdoutAndDontPrintServer) {
  {
    ServeProcess p({"--log-stdout"});
    ASSERT_NE(p.port(), 0) << p.all();
    EXPECT_NE(p.out().find("To see the GUI go to"), std::string::npos) << p.out();
    EXPECT_EQ(p.err().find("To see the GUI go to"), std::string::npos) << p.err();
  }
  ServeProcess p({"--dont-print-server"});
  EXPECT_TRUE(p.ready()) << p.all();
  EXPECT_EQ(p.all().find("To see the GUI go to"), std::string::npos) << p.all();
}

// ---- TLS ----------------------------------------------------------------------------------------

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

// A self-signed certificate for 127.0.0.1 (CN and subjectAltName) and its key, made by the
// openssl CLI in a temp folder.
struct SelfSigned {
  fs::path dir = make_temp_dir("tls");
  fs::path cert = dir / "cert.pem", key = dir / "key.pem";
  SelfSigned() {
    CliResult r = run_shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout " + q(key) + " -out " + q(cert) +
                            " 2>&1");
    if (r.rc != 0) throw std::runtime_error("openssl req failed: " + r.out);
  }
  ~SelfSigned() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// A client context that trusts only `ca` and checks the server's name.
std::unique_ptr<net::ssl::context> client_context(const fs::path& ca) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  ctx->load_verify_file(ca.string());
  ctx->set_verify_mode(net::ssl::verify_peer);
  return ctx;
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

void connect_tls(TlsStream& stream, net::io_context& ioc, uint16_t port) {
  tcp::resolver resolver(ioc);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(stream).connect(resolver.resolve("127.0.0.1", std::to_string(port)));
  stream.set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  stream.handshake(net::ssl::stream_base::client);  // throws when the certificate does not verify
}

HttpResult https_get(uint16_t port, const std::string& target, const fs::path& ca) {
  net::io_context ioc;
  auto ctx = client_context(ca);
  TlsStream stream(ioc, *ctx);
  connect_tls(stream, ioc, port);
  beast::http::request<beast::http::empty_body> req(beast::http::verb::get, target, 11);
  req.set(beast::http::field::host, "127.0.0.1");
  beast::http::write(stream, req);
  beast::flat_buffer buffer;
  beast::http::response<beast::http::string_body> res;
  beast::http::read(stream, buffer, res);
  HttpResult r;
  r.status = static_cast<int>(res.result_int());
  r.body = res.body();
  for (auto& f : res) r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  beast::error_code ec;
  stream.shutdown(ec);
  return r;
}

TEST(ServeFlags, TlsServesHttpsAndWss) {
  SelfSigned tls;
  ServeProcess p({"--tls-keyfile", tls.key.string(), "--tls-certfile", tls.cert.string()});
  ASSERT_NE(p.port(), 0) << p.all();
  EXPECT_EQ(p.scheme(), "https");  // as ComfyUI prints it with TLS on

  HttpResult stats = https_get(p.port(), "/system_stats", tls.cert);
  EXPECT_EQ(stats.status, 200);
  EXPECT_EQ(stats.json_body()["system"]["os"], "linux");

  // WSS on the same port: the first message is `status` with our sid.
  {
    net::io_context ioc;
    auto ctx = client_context(tls.cert);
    beast::websocket::stream<TlsStream> ws(ioc, *ctx);
    connect_tls(ws.next_layer(), ioc, p.port());
    ws.handshake("127.0.0.1", "/ws?clientId=tls-client");
    beast::flat_buffer buffer;
    ws.read(buffer);
    json msg = json::parse(beast::buffers_to_string(buffer.data()));
    EXPECT_EQ(msg["type"], "status");
    EXPECT_EQ(msg["data"]["sid"], "tls-client");
    EXPECT_TRUE(msg["data"]["status"]["exec_info"].contains("queue_remaining"));
    beast::error_code ec;
    ws.close(beast::websocket::close_code::normal, ec);
  }

  // Plain HTTP to the TLS port gets no answer, and the server goes on serving.
  EXPECT_THROW(
      {
        HttpResult plain = http_request(p.port(), "GET", "/system_stats");
        if (plain.status == 0 || plain.status >= 400) throw std::runtime_error("no HTTP answer");
      },
      std::exception);
  // A client that does not trust the certificate fails its handshake.
  {
    SelfSigned other;
    EXPECT_THROW(https_get(p.port(), "/system_stats", other.cert), std::exception);
  }
  EXPECT_EQ(https_get(p.port(), "/prompt", tls.cert).status, 200);
}

TEST(ServeFlags, TlsBadFilesFailAtStart) {
  SelfSigned tls;
  fs::path dir = make_temp_dir("tls-bad");
  fs::path junk = dir / "junk.pem";
  std::ofstream(junk) << "not a PEM file\n";
  SelfSigned other;  // a key that is not the certificate's
  auto serve = [&](const fs::path& key, const fs::path& cert) {
    return run_shell(std::string(COMFY_BINARY) + " serve --base-directory " + q(dir) + " --port 0 --tls-keyfile " +
                     q(key) + " --tls-certfile " + q(cert) + " --quick-test-for-ci 2>&1");
  };
  CliResult missing_cert = serve(tls.key, dir / "nope.pem");
  EXPECT_EQ(missing_cert.rc, 1) << missing_cert.out;
  EXPECT_NE(missing_cert.out.find("--tls-certfile"), std::string::npos) << missing_cert.out;
  EXPECT_NE(missing_cert.out.find("nope.pem"), std::string::npos) << missing_cert.out;

  CliResult junk_key = serve(junk, tls.cert);
  EXPECT_EQ(junk_key.rc, 1) << junk_key.out;
  EXPECT_NE(junk_key.out.find("--tls-keyfile"), std::string::npos) << junk_key.out;
  EXPECT_NE(junk_key.out.find("junk.pem"), std::string::npos) << junk_key.out;

  CliResult mismatch = serve(other.key, tls.cert);
  EXPECT_EQ(mismatch.rc, 1) << mismatch.out;
  EXPECT_NE(mismatch.out.find("is not the key of the certificate"), std::string::npos) << mismatch.out;

  CliResult alone = run_shell(std::string(COMFY_BINARY) + " serve --base-directory " + q(dir) +
                              " --port 0 --tls-keyfile " + q(tls.key) + " --quick-test-for-ci 2>&1");
  EXPECT_EQ(alone.rc, 1) << alone.out;
  EXPECT_NE(alone.out.find("go together"), std::string::npos) << alone.out;

  CliResult good = serve(tls.key, tls.cert);  // the control: the same command with good files starts
  EXPECT_EQ(good.rc, 0) << good.out;
  EXPECT_NE(good.out.find("https://127.0.0.1:"), std::string::npos) << good.out;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace comfy::testing
