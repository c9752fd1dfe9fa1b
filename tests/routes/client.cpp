#include "routes/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <functional>
#include <random>

namespace comfy::testing {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

json HttpResult::json_body() const { return json::parse(body); }

std::string HttpResult::header(const std::string& lower_name) const {
  for (auto& [k, v] : headers)
    if (k == lower_name) return v;
  return {};
}

HttpResult http_request(uint16_t port, const std::string& method, const std::string& target, const std::string& body,
                        const Headers& headers) {
  return http_request_at("127.0.0.1", port, method, target, body, headers);
}

HttpResult http_request_at(const std::string& address, uint16_t port, const std::string& method,
                           const std::string& target, const std::string& body, const Headers& headers) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(30));
  auto addr = net::ip::make_address(address);
  stream.connect(tcp::endpoint(addr, port));
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
  req.set(bhttp::field::host, (addr.is_v6() ? "[" + address + "]" : address) + ":" + std::to_string(port));
  bool has_type = false;
  for (auto& [k, v] : headers) {
    req.set(k, v);
    if (beast::iequals(k, "content-type")) has_type = true;
  }
  if (!body.empty() && !has_type) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ull << 30);
  parser.skip(method == "HEAD");  // a HEAD answer has Content-Length but no body
  bhttp::read(stream, buffer, parser);
  auto& res = parser.get();
  HttpResult out;
  out.status = static_cast<int>(res.result_int());
  out.body = res.body();
  for (auto& f : res) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    out.headers.emplace_back(name, std::string(f.value()));
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return out;
}

HttpResult http_post_json(uint16_t port, const std::string& target, const json& body) {
  return http_request(port, "POST", target, body.dump());
}

std::pair<std::string, std::string> multipart_body(const std::vector<FormField>& fields) {
  std::string boundary = "----comfycpptest" + std::to_string(std::random_device{}());
  std::string body;
  for (auto& f : fields) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + f.name + "\"";
    if (!f.filename.empty()) body += "; filename=\"" + f.filename + "\"";
    body += "\r\n";
    if (!f.filename.empty()) body += "Content-Type: application/octet-stream\r\n";
    body += "\r\n" + f.data + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return {"multipart/form-data; boundary=" + boundary, body};
}

struct WsClient::Impl {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  std::thread reader;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<WsMessage> inbox;
  bool done = false;
  std::mutex write_mutex;
};

WsClient::WsClient(uint16_t port, const std::string& target) : impl_(std::make_unique<Impl>()) {
  impl_->ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  impl_->ws.handshake("127.0.0.1:" + std::to_string(port), target);
  impl_->reader = std::thread([impl = impl_.get()] {
    while (true) {
      beast::flat_buffer buf;
      beast::error_code ec;
      impl->ws.read(buf, ec);
      std::lock_guard lock(impl->mutex);
      if (ec) {
        impl->done = true;
        impl->cv.notify_all();
        return;
      }
      impl->inbox.push_back(WsMessage{impl->ws.got_binary(), beast::buffers_to_string(buf.data())});
      impl->cv.notify_all();
    }
  });
}

WsClient::~WsClient() { close(); }

std::optional<WsMessage> WsClient::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  impl_->cv.wait_for(lock, timeout, [&] { return !impl_->inbox.empty() || impl_->done; });
  if (impl_->inbox.empty()) return std::nullopt;
  WsMessage m = std::move(impl_->inbox.front());
  impl_->inbox.pop_front();
  return m;
}

std::optional<json> WsClient::next_of_type(const std::string& type, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto m = next(left);
    if (!m) return std::nullopt;
    if (m->binary) continue;
    json j = m->json_data();
    if (j.value("type", "") == type) return j;
  }
  return std::nullopt;
}

std::vector<WsMessage> WsClient::collect_until(const std::function<bool(const WsMessage&)>& pred,
                                               std::chrono::milliseconds timeout) {
  std::vector<WsMessage> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto m = next(left);
    if (!m) break;
    out.push_back(*m);
    if (pred(*m)) break;
  }
  return out;
}

void WsClient::send_text(const std::string& text) {
  std::lock_guard lock(impl_->write_mutex);
  impl_->ws.text(true);
  impl_->ws.write(net::buffer(text));
}

void WsClient::close() {
  if (!impl_ || !impl_->reader.joinable()) return;
  beast::error_code ec;
  impl_->ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
  impl_->ws.next_layer().close(ec);
  impl_->reader.join();
}

bool WsClient::closed_by_peer() {
  std::lock_guard lock(impl_->mutex);
  return impl_->done;
}

}  // namespace comfy::testing
