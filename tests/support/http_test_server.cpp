#include "support/http_test_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <mutex>
#include <thread>

namespace comfy::test {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct HttpTestServer::Impl {
  std::string address;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;
  mutable std::mutex mutex;
  std::map<std::string, TestResource> resources;
  std::vector<RecordedRequest> recorded;
  std::vector<std::thread> connections;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      {
        std::lock_guard lock(mutex);
        connections.emplace_back([this, s = std::make_shared<tcp::socket>(std::move(socket))] { serve(*s); });
      }
      accept();
    });
  }

  static void send(tcp::socket& s, const std::string& text) {
    boost::system::error_code ec;
    asio::write(s, asio::buffer(text), ec);
  }

  void serve(tcp::socket& socket) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    RecordedRequest rec;
    rec.target = std::string(req.target());
    for (auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      rec.headers[name] = std::string(f.value());
    }
    TestResource res;
    bool found = false, drop = false;
    {
      std::lock_guard lock(mutex);
      recorded.push_back(rec);
      std::string path = rec.target.substr(0, rec.target.find('?'));
      auto it = resources.find(path);
      if (it != resources.end()) {
        found = true;
        res = it->second;
        if (it->second.drop_times > 0) {
          --it->second.drop_times;
          drop = true;
        }
      }
    }
    auto simple = [&](int status, const std::string& reason, const std::string& body, const std::string& extra = "") {
      send(socket, "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: text/plain\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n" + extra + "Connection: close\r\n\r\n" + body);
    };
    if (!found) return simple(404, "Not Found", "no such file");
    if (!res.require_bearer.empty()) {
      auto it = rec.headers.find("authorization");
      if (it == rec.headers.end()) return simple(401, "Unauthorized", "token required");
      if (it->second != "Bearer " + res.require_bearer) return simple(403, "Forbidden", "bad token");
    }
    if (res.status >= 300 && res.status < 400)
      return simple(res.status, "Found", "", "Location: " + res.location + "\r\n");
    if (res.status != 200) return simple(res.status, "Error", "error " + std::to_string(res.status));
    size_t start = 0, size = res.body.size();
    int status = 200;
    auto range = rec.headers.find("range");
    std::string head;
    if (res.ranges && range != rec.headers.end()) {
      unsigned long long a = 0;
      if (std::sscanf(range->second.c_str(), "bytes=%llu-", &a) == 1) {
        if (a >= size) {
          return simple(416, "Range Not Satisfiable", "", "Content-Range: bytes */" + std::to_string(size) + "\r\n");
        }
        start = a;
        status = 206;
        head = "Content-Range: bytes " + std::to_string(start) + "-" + std::to_string(size - 1) + "/" +
               std::to_string(size) + "\r\n";
      }
    }
    for (auto& [name, value] : res.headers) head += name + ": " + value + "\r\n";
    send(socket, "HTTP/1.1 " + std::to_string(status) + (status == 206 ? " Partial Content" : " OK") +
                     "\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: " +
                     std::to_string(size - start) + "\r\n" + head + "Connection: close\r\n\r\n");
    size_t end = size;
    if (drop) end = std::min(size, start + res.drop_after);
    size_t chunk = res.chunk ? res.chunk : (end - start);
    for (size_t pos = start; pos < end; pos += chunk) {
      size_t n = std::min(chunk, end - pos);
      boost::system::error_code wec;
      asio::write(socket, asio::buffer(res.body.data() + pos, n), wec);
      if (wec) return;
      if (res.delay.count() && pos + n < end) std::this_thread::sleep_for(res.delay);
    }
    boost::system::error_code sec;
    socket.shutdown(tcp::socket::shutdown_both, sec);
  }
};

HttpTestServer::HttpTestServer(const std::string& address) : impl_(std::make_unique<Impl>()) {
  impl_->address = address;
  tcp::endpoint ep(asio::ip::make_address(address), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->accept();
  impl_->accept_thread = std::thread([this] { impl_->io.run(); });
}

HttpTestServer::~HttpTestServer() {
  impl_->io.stop();
  impl_->accept_thread.join();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(impl_->mutex);
    threads.swap(impl_->connections);
  }
  for (auto& t : threads) t.join();
}

uint16_t HttpTestServer::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string HttpTestServer::url(const std::string& path) const {
  return "http://" + impl_->address + ":" + std::to_string(port()) + path;
}

void HttpTestServer::set(const std::string& path, TestResource resource) {
  std::lock_guard lock(impl_->mutex);
  impl_->resources[path] = std::move(resource);
}

std::vector<RecordedRequest> HttpTestServer::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->recorded;
}

}  // namespace comfy::test
