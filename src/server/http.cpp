#include "server/http.h"

#include <algorithm>
#include <cctype>
#include <thread>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "server/pyjson.h"
#include "server/ws_transport.h"

namespace comfy::server {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// ---- Request / Response -------------------------------------------------------------------

const std::string* Request::header(const std::string& lower_name) const {
  for (auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

bool Request::has_query(const std::string& key) const {
  return std::any_of(query.begin(), query.end(), [&](auto& kv) { return kv.first == key; });
}

std::optional<std::string> Request::query_value(const std::string& key) const {
  for (auto& [k, v] : query)
    if (k == key) return v;
  return std::nullopt;
}

std::string Request::param(const std::string& name) const {
  for (auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

Response Response::json_body(const json& value, int status) {
  Response r;
  r.status = status;
  r.content_type = "application/json; charset=utf-8";
  r.body = py_dumps(value);
  return r;
}

Response Response::text(std::string body, int status, std::string content_type) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response Response::empty(int status) {
  Response r;
  r.status = status;
  r.content_type = "application/octet-stream";
  return r;
}

Response Response::bytes(std::string body, std::string content_type) {
  Response r;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response Response::upgrade(std::string sid) {
  Response r;
  r.status = 101;
  r.websocket = true;
  r.websocket_sid = std::move(sid);
  return r;
}

void Response::set_header(const std::string& name, const std::string& value) {
  for (auto& [k, v] : headers)
    if (beast::iequals(k, name)) {
      v = value;
      return;
    }
  headers.emplace_back(name, value);
}

bool Response::has_header(const std::string& name) const {
  return std::any_of(headers.begin(), headers.end(), [&](auto& kv) { return beast::iequals(kv.first, name); });
}

Response not_found() { return Response::text("404: Not Found", 404); }

Response method_not_allowed(const std::vector<std::string>& allowed) {
  Response r = Response::text("405: Method Not Allowed", 405);
  std::string allow;
  for (auto& m : allowed) allow += (allow.empty() ? "" : ",") + m;
  r.set_header("Allow", allow);
  return r;
}

Response internal_error() {
  return Response::text("500 Internal Server Error\n\nServer got itself in trouble", 500);
}

std::string percent_decode(const std::string& s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else if (plus_as_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {

void parse_target(Request& r) {
  auto q = r.target.find('?');
  r.raw_path = r.target.substr(0, q);
  if (q == std::string::npos) return;
  std::string qs = r.target.substr(q + 1);
  size_t start = 0;
  while (start <= qs.size()) {
    size_t amp = qs.find('&', start);
    std::string part = qs.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    if (!part.empty()) {
      auto eq = part.find('=');
      std::string k = part.substr(0, eq), v = eq == std::string::npos ? "" : part.substr(eq + 1);
      r.query.emplace_back(percent_decode(k, true), percent_decode(v, true));
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
}

// ---- one HTTP connection ----------------------------------------------------------------------

// How long a response that waits for its acknowledgement (Response::wait_for_ack) may wait, and
// how often the socket is asked.
constexpr auto kAckLimit = std::chrono::milliseconds(200);
constexpr auto kAckPoll = std::chrono::microseconds(100);

// The bytes in the receive queue of the peer's socket, that its program has not read yet, when the
// peer is on this machine (loopback): asked of the kernel by sock_diag netlink with the connection's
// four-tuple. -1 when it cannot be known (a remote peer, no netlink).
int peer_unread_bytes(tcp::socket& socket) {
  beast::error_code ec;
  auto local = socket.local_endpoint(ec);
  if (ec) return -1;
  auto remote = socket.remote_endpoint(ec);
  if (ec || !remote.address().is_loopback()) return -1;
  struct {
    nlmsghdr header;
    inet_diag_req_v2 req;
  } msg{};
  msg.header.nlmsg_len = sizeof msg;
  msg.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.header.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = remote.address().is_v6() ? AF_INET6 : AF_INET;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  // The peer's socket: its source is our remote end, its destination our local end.
  msg.req.id.idiag_sport = htons(remote.port());
  msg.req.id.idiag_dport = htons(local.port());
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (remote.address().is_v6()) {
    auto a = remote.address().to_v6().to_bytes(), b = local.address().to_v6().to_bytes();
    std::memcpy(msg.req.id.idiag_src, a.data(), 16);
    std::memcpy(msg.req.id.idiag_dst, b.data(), 16);
  } else {
    auto a = remote.address().to_v4().to_bytes(), b = local.address().to_v4().to_bytes();
    std::memcpy(msg.req.id.idiag_src, a.data(), 4);
    std::memcpy(msg.req.id.idiag_dst, b.data(), 4);
  }
  int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -1;
  int result = -1;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) == sizeof msg) {
    alignas(nlmsghdr) char buf[1024];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    auto* h = reinterpret_cast<nlmsghdr*>(buf);
    if (n > 0 && NLMSG_OK(h, static_cast<unsigned>(n)) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      auto* diag = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      result = static_cast<int>(diag->idiag_rqueue);
    }
  }
  ::close(fd);
  return result;
}

// Bytes of the answer the client program has not read yet: written to `socket` but not
// acknowledged by the client's TCP stack (SIOCOUTQ), then acknowledged but still in the client
// socket's receive queue. -1 once that cannot be known (the socket is gone; the client is on
// another machine, whose reads we cannot see: then only after its TCP stack acknowledged).
int undelivered_bytes(tcp::socket& socket) {
  if (!socket.is_open()) return -1;
  int n = 0;
  if (::ioctl(socket.native_handle(), SIOCOUTQ, &n) != 0) return -1;
  if (n > 0) return n;
  return peer_unread_bytes(socket);
}

// `Stream` is beast::tcp_stream (HTTP) or tls_stream (HTTPS); the code is the same but for the
// TLS handshake before the first read and the stream handed to the WebSocket.
template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream stream, const HttpServer::Handler& handler, WsHub& hub, uint64_t body_limit)
      : stream_(std::move(stream)), ack_timer_(stream_.get_executor()), handler_(handler), hub_(hub),
        body_limit_(body_limit) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, tls_stream>) {
        // A client that is not speaking TLS (plain HTTP to this port) fails here and is closed.
        beast::get_lowest_layer(self->stream_).expires_after(std::chrono::seconds(30));
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return self->close();
          self->read();
        });
      } else {
        self->read();
      }
    });
  }

 private:
  auto& lowest() { return beast::get_lowest_layer(stream_); }

  void read() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(64 * 1024);
    lowest().expires_after(std::chrono::seconds(300));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
      return close();
    }
    if (ec == bhttp::error::body_limit) {
      uint64_t actual = parser_->content_length().value_or(0);
      Response r = Response::text("Maximum request body size " + std::to_string(body_limit_) +
                                      " exceeded, actual body size " + std::to_string(actual),
                                  413);
      return write(std::move(r), false, 11);
    }
    if (ec) {
      // A request Beast cannot parse: aiohttp answers 400 and closes.
      Response r = Response::text("400: Bad Request", 400);
      return write(std::move(r), false, 11);
    }
    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    parse_target(req);
    for (auto& field : msg) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      req.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    req.body = msg.body();
    beast::error_code ignored;
    auto ep = lowest().socket().remote_endpoint(ignored);
    if (!ignored) req.remote = ep.address().to_string();
    req.is_upgrade = beast::websocket::is_upgrade(msg);

    Response res;
    try {
      res = handler_(req);
    } catch (const std::exception& e) {
      spdlog::error("Error handling request {} {}: {}", req.method, req.target, e.what());
      res = internal_error();
    }
    if (res.websocket) {
      if (!req.is_upgrade) {
        // aiohttp's words (recorded from ComfyUI 0.8.0), with the Upgrade header's value or None.
        const std::string* upgrade = req.header("upgrade");
        res = Response::text("No WebSocket UPGRADE hdr: " + (upgrade ? *upgrade : std::string("None")) +
                                 "\n Can \"Upgrade\" only to \"WebSocket\".",
                             400);
      } else {
        lowest().expires_never();
        accept_websocket(hub_, std::move(stream_), parser_->release(), res.websocket_sid);
        return;
      }
    }
    write(std::move(res), msg.keep_alive(), msg.version(), msg.method() == bhttp::verb::head);
  }

  // `head`: the answer to a HEAD request: its headers (Content-Length included), no body.
  void write(Response res, bool keep_alive, unsigned version, bool head = false) {
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>();
    out->version(version);
    out->result(static_cast<unsigned>(res.status));
    out->set(bhttp::field::server, "comfycpp");
    // aiohttp sends no Content-Type with a 204 or 304 (they have no body).
    if (!res.content_type.empty() && res.status != 204 && res.status != 304)
      out->set(bhttp::field::content_type, res.content_type);
    for (auto& [k, v] : res.headers) out->set(k, v);
    out->body() = std::move(res.body);
    out->keep_alive(keep_alive);
    out->prepare_payload();
    if (head) {
      auto length = out->body().size();
      out->body().clear();
      out->content_length(length);
    }
    lowest().expires_after(std::chrono::seconds(300));
    bhttp::async_write(stream_, *out,
                       [self = this->shared_from_this(), out, sent = std::move(res.on_sent),
                        ack = res.wait_for_ack](beast::error_code ec, size_t) mutable {
                         if (sent) {
                           if (ack && !ec) self->notify_when_acked(std::move(sent));
                           else sent(false);
                         }
                         if (ec || !out->keep_alive()) return self->close();
                         self->read();
                       });
  }

  // Calls `sent(true)` once the client program has read the answer (undelivered_bytes is 0),
  // `sent(false)` when that cannot be known or takes longer than kAckLimit. Polls on this connection's strand, so the socket is
  // never used from another thread; the connection goes on reading meanwhile.
  void notify_when_acked(std::function<void(bool)> sent) {
    int n = undelivered_bytes(lowest().socket());
    if (n <= 0) return sent(n == 0);
    ack_waiters_.emplace_back(std::move(sent), std::chrono::steady_clock::now() + kAckLimit);
    if (ack_waiters_.size() == 1) poll_ack();
  }

  void poll_ack() {
    ack_timer_.expires_after(kAckPoll);
    ack_timer_.async_wait([self = this->shared_from_this()](beast::error_code) {
      int n = undelivered_bytes(self->lowest().socket());
      auto now = std::chrono::steady_clock::now();
      auto waiters = std::move(self->ack_waiters_);
      self->ack_waiters_.clear();
      for (auto& [sent, deadline] : waiters) {
        if (n == 0) sent(true);
        else if (n < 0 || now >= deadline) sent(false);
        else self->ack_waiters_.emplace_back(std::move(sent), deadline);
      }
      if (!self->ack_waiters_.empty()) self->poll_ack();
    });
  }

  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().socket().close(ec);
  }

  Stream stream_;
  net::steady_timer ack_timer_;
  std::vector<std::pair<std::function<void(bool)>, std::chrono::steady_clock::time_point>> ack_waiters_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const HttpServer::Handler& handler_;
  WsHub& hub_;
  uint64_t body_limit_;
};

// ---- listener -----------------------------------------------------------------------------

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::endpoint ep, const HttpServer::Handler& handler, WsHub& hub, uint64_t limit,
           net::ssl::context* tls)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), handler_(handler), hub_(hub), limit_(limit), tls_(tls) {
    beast::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) acceptor_.set_option(net::ip::v6_only(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
                                     ": " + ec.message());
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void run() { accept(); }
  void stop() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
    });
  }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
      if (!ec) {
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        if (self->tls_) {
          std::make_shared<HttpSession<tls_stream>>(tls_stream(beast::tcp_stream(std::move(s)), *self->tls_),
                                                    self->handler_, self->hub_, self->limit_)
              ->run();
        } else {
          std::make_shared<HttpSession<beast::tcp_stream>>(beast::tcp_stream(std::move(s)), self->handler_,
                                                           self->hub_, self->limit_)
              ->run();
        }
      }
      self->accept();
    });
  }
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  const HttpServer::Handler& handler_;
  WsHub& hub_;
  uint64_t limit_;
  net::ssl::context* tls_;
};

}  // namespace

struct HttpServer::Impl {
  Handler handler;
  WsHub& hub;
  uint64_t body_limit;
  int threads;
  net::io_context ioc;
  std::unique_ptr<net::ssl::context> tls;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::shared_ptr<Listener>> listeners;
  std::vector<std::thread> pool;
  Impl(Handler h, WsHub& hb, uint64_t limit, int n)
      : handler(std::move(h)), hub(hb), body_limit(limit), threads(n), ioc(n) {}
};

HttpServer::HttpServer(Handler handler, WsHub& hub, uint64_t body_limit, int threads)
    : impl_(std::make_unique<Impl>(std::move(handler), hub, body_limit, std::max(1, threads))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::use_tls(const std::string& certfile, const std::string& keyfile) {
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  auto fail = [](const std::string& what, const std::string& file, const beast::error_code& ec) {
    throw std::runtime_error(what + " " + file + ": " + ec.message());
  };
  beast::error_code ec;
  if (certfile.empty() || keyfile.empty())
    throw std::runtime_error("TLS needs both --tls-certfile and --tls-keyfile");
  // The key first: loading the certificate after it keeps a mismatch for the check below.
  ctx->use_private_key_file(keyfile, net::ssl::context::pem, ec);
  if (ec) fail("--tls-keyfile: cannot read a PEM private key from", keyfile, ec);
  ctx->use_certificate_chain_file(certfile, ec);
  if (ec) fail("--tls-certfile: cannot read a PEM certificate from", certfile, ec);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::runtime_error("--tls-keyfile " + keyfile + " is not the key of the certificate in --tls-certfile " +
                             certfile);
  impl_->tls = std::move(ctx);
}

bool HttpServer::tls() const { return impl_->tls != nullptr; }

uint16_t HttpServer::listen(const std::vector<std::string>& addresses, uint16_t port) {
  for (auto& a : addresses) {
    beast::error_code ec;
    auto addr = net::ip::make_address(a, ec);
    if (ec) {
      // A host name: resolve it (ComfyUI binds whatever getaddrinfo gives).
      tcp::resolver resolver(impl_->ioc);
      auto results = resolver.resolve(a, std::to_string(port), ec);
      if (ec || results.empty()) throw std::runtime_error("cannot resolve listen address " + a);
      addr = results.begin()->endpoint().address();
    }
    auto l = std::make_shared<Listener>(impl_->ioc, tcp::endpoint(addr, port), impl_->handler, impl_->hub,
                                        impl_->body_limit, impl_->tls.get());
    if (port == 0) port = l->port();
    impl_->listeners.push_back(l);
  }
  for (auto& l : impl_->listeners) l->run();
  impl_->work.emplace(impl_->ioc.get_executor());
  for (int i = 0; i < impl_->threads; ++i) impl_->pool.emplace_back([this] { impl_->ioc.run(); });
  return port;
}

void HttpServer::stop() {
  if (!impl_ || impl_->pool.empty()) return;
  for (auto& l : impl_->listeners) l->stop();
  impl_->hub.close_all();
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->pool)
    if (t.joinable()) t.join();
  impl_->pool.clear();
  impl_->listeners.clear();
}

}  // namespace comfy::server
