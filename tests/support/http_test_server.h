// A small HTTP/1.1 server for download tests (Boost.Beast on a loopback address): files with
// Range support, throttling, dropped connections, 401/403 for a bearer token, and redirects.
// Every request is recorded with its headers. One thread accepts; each connection gets its own
// thread and is closed after one answer.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace comfy::test {

struct TestResource {
  std::string body;
  int status = 200;                 // 3xx with `location` redirects; 4xx/5xx answer with a text body
  std::string location;
  bool ranges = true;               // honour Range (206); false: always the whole file (200)
  size_t drop_after = 0;            // with drop_times > 0: close after this many body bytes...
  int drop_times = 0;               // ...on this many answers
  size_t chunk = 0;                 // throttling: write the body in chunks of this size...
  std::chrono::milliseconds delay{0};  // ...with this pause between them
  std::string require_bearer;       // non-empty: 401 without Authorization, 403 with another token
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers on 200/206 answers

  static TestResource file(std::string content) {
    TestResource r;
    r.body = std::move(content);
    return r;
  }
};

struct RecordedRequest {
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
};

class HttpTestServer {
 public:
  explicit HttpTestServer(const std::string& address = "127.0.0.1");
  ~HttpTestServer();
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  uint16_t port() const;
  std::string url(const std::string& path) const;  // http://ADDRESS:PORT/path
  void set(const std::string& path, TestResource resource);
  std::vector<RecordedRequest> requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `n` reproducible bytes (a stand-in for a model file's content).
inline std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

}  // namespace comfy::test
