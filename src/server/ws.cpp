#include "server/ws.h"

#include <deque>
#include <random>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "server/pyjson.h"
#include "server/ws_transport.h"

namespace comfy::server {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  return gen;
}

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24), s[1] = static_cast<char>(v >> 16), s[2] = static_cast<char>(v >> 8),
  s[3] = static_cast<char>(v);
  return s;
}

std::shared_ptr<const std::string> frame(const std::string& type, const json& data) {
  json msg = json::object();
  msg["type"] = type;
  msg["data"] = data;
  return std::make_shared<const std::string>(py_dumps(msg));
}

// ---- the Beast side of one socket ------------------------------------------------------------

// `Stream` is beast::tcp_stream (ws://) or beast::ssl_stream<beast::tcp_stream> (wss://).
template <class Stream>
class WsSession : public WsConnection, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  using std::enable_shared_from_this<WsSession<Stream>>::shared_from_this;
  WsSession(WsHub& hub, Stream stream, std::string sid)
      : hub_(hub), ws_(std::move(stream)), sid_(std::move(sid)) {}

  void start(beast::http::request<beast::http::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "comfycpp"); }));
    ws_.read_message_max(16u << 20);
    auto self = shared_from_this();
    auto r = std::make_shared<beast::http::request<beast::http::string_body>>(std::move(req));
    ws_.async_accept(*r, [self, r](beast::error_code ec) {
      if (ec) return;
      self->hub_.on_open(self, self->sid_);
      self->read();
    });
  }

  void write(std::shared_ptr<const std::string> f, bool binary) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), f = std::move(f), binary]() mutable {
      if (self->closed_) return;
      self->backlog_ += f->size();
      self->queue_.emplace_back(std::move(f), binary);
      if (self->backlog_ > WsHub::kMaxBacklogBytes) {
        // A client this far behind is dead or stalled: drop it rather than hold the memory.
        spdlog::warn("WebSocket client {} is {} bytes behind; closing it", self->sid_, self->backlog_);
        self->hub_.on_close(self, self->sid_);
        return self->shutdown();
      }
      if (self->queue_.size() == 1) self->do_write();
    });
  }

  void close() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] { self->shutdown(); });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->closed_ = true;
        self->queue_.clear();
        self->hub_.on_close(self, self->sid_);
        return;
      }
      if (self->ws_.got_text()) self->hub_.on_text(self, self->sid_, beast::buffers_to_string(self->buffer_.data()));
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }

  void do_write() {
    auto& [f, binary] = queue_.front();
    ws_.binary(binary);
    ws_.async_write(net::buffer(*f), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->closed_ = true;
        self->queue_.clear();
        return;
      }
      self->backlog_ -= self->queue_.front().first->size();
      self->queue_.pop_front();
      if (!self->queue_.empty()) self->do_write();
    });
  }

  void shutdown() {
    if (closed_) return;
    closed_ = true;
    queue_.clear();
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

  WsHub& hub_;
  websocket::stream<Stream> ws_;
  std::string sid_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::shared_ptr<const std::string>, bool>> queue_;
  size_t backlog_ = 0;
  bool closed_ = false;
};

}  // namespace

void accept_websocket(WsHub& hub, beast::tcp_stream stream, beast::http::request<beast::http::string_body> request,
                      std::string sid) {
  auto session = std::make_shared<WsSession<beast::tcp_stream>>(hub, std::move(stream), std::move(sid));
  session->start(std::move(request));
}

void accept_websocket(WsHub& hub, beast::ssl_stream<beast::tcp_stream> stream,
                      beast::http::request<beast::http::string_body> request, std::string sid) {
  auto session =
      std::make_shared<WsSession<beast::ssl_stream<beast::tcp_stream>>>(hub, std::move(stream), std::move(sid));
  session->start(std::move(request));
}

// ---- ids -------------------------------------------------------------------------------------

std::string new_sid() {
  uint64_t a = rng()(), b = rng()();
  a = (a & ~0xf000ULL) | 0x4000ULL;                      // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
                static_cast<unsigned long long>(b));
  return buf;
}

std::string new_uuid4() {
  std::string h = new_sid();
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

// ---- the hub ---------------------------------------------------------------------------------

WsHub::WsHub(std::function<json()> queue_info, std::function<json()> features)
    : queue_info_(std::move(queue_info)), features_(std::move(features)) {}

void WsHub::deliver(std::shared_ptr<const std::string> f, bool binary, const std::string& sid) {
  std::vector<std::shared_ptr<WsConnection>> targets;
  {
    std::lock_guard lock(mutex_);
    if (sid.empty()) {
      for (auto& [id, c] : clients_) targets.push_back(c.conn);
    } else if (auto it = clients_.find(sid); it != clients_.end()) {
      targets.push_back(it->second.conn);
    }
  }
  for (auto& t : targets) t->write(f, binary);
}

void WsHub::send(const std::string& type, const json& data, const std::string& sid) {
  if (type == "executing" && !sid.empty() && data.is_object()) {
    std::lock_guard lock(mutex_);
    running_client_ = sid;
    if (data.contains("node") && data["node"].is_string()) running_node_ = data["node"].get<std::string>();
    else running_node_.reset();
  }
  deliver(frame(type, data), false, sid);
}

void WsHub::send_binary(BinaryEvent event, const std::string& payload, const std::string& sid) {
  deliver(std::make_shared<const std::string>(be32(static_cast<uint32_t>(event)) + payload), true, sid);
}

void WsHub::send_preview(const std::string& image, bool png, const json& metadata, const std::string& sid) {
  std::vector<std::pair<std::shared_ptr<WsConnection>, bool>> targets;
  {
    std::lock_guard lock(mutex_);
    auto add = [&](const std::string& id, Client& c) {
      // A broadcast preview is checked against a sid nobody has: the legacy type 1 (spec 2.4).
      bool meta = !sid.empty() && c.flags.is_object() && c.flags.value("supports_preview_metadata", false) == true;
      (void)id;
      targets.emplace_back(c.conn, meta);
    };
    if (sid.empty()) {
      for (auto& [id, c] : clients_) add(id, c);
    } else if (auto it = clients_.find(sid); it != clients_.end()) {
      add(sid, it->second);
    }
  }
  std::shared_ptr<const std::string> legacy, with_meta;
  for (auto& [conn, meta] : targets) {
    if (meta) {
      if (!with_meta) {
        json m = metadata;
        m["image_type"] = png ? "image/png" : "image/jpeg";
        std::string text = py_dumps(m);
        with_meta = std::make_shared<const std::string>(
            be32(static_cast<uint32_t>(BinaryEvent::preview_image_with_metadata)) +
            be32(static_cast<uint32_t>(text.size())) + text + image);
      }
      conn->write(with_meta, true);
    } else {
      if (!legacy)
        legacy = std::make_shared<const std::string>(be32(static_cast<uint32_t>(BinaryEvent::preview_image)) +
                                                     be32(png ? 2 : 1) + image);
      conn->write(legacy, true);
    }
  }
}

bool WsHub::supports_preview_metadata(const std::string& sid) const {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(sid);
  return it != clients_.end() && it->second.flags.is_object() &&
         it->second.flags.value("supports_preview_metadata", false) == true;
}

size_t WsHub::client_count() const {
  std::lock_guard lock(mutex_);
  return clients_.size();
}

bool WsHub::connected(const std::string& sid) const {
  std::lock_guard lock(mutex_);
  return clients_.count(sid) > 0;
}

void WsHub::close_all() {
  std::map<std::string, Client> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(clients_);
  }
  for (auto& [id, c] : all) c.conn->close();
}

void WsHub::on_open(const std::shared_ptr<WsConnection>& conn, const std::string& sid) {
  json status = json::object();
  status["status"] = queue_info_();
  status["sid"] = sid;
  auto hello = frame("status", status);
  std::lock_guard lock(mutex_);
  // The old socket of this sid (if any) stays open but is no longer addressed, as in ComfyUI.
  clients_[sid] = Client{conn, json::object(), true};
  // Queued under the lock, so nothing addressed to this sid can overtake the greeting.
  conn->write(hello, false);
  if (running_client_ == sid && running_node_) {
    json data = json::object();
    data["node"] = *running_node_;
    conn->write(frame("executing", data), false);
  }
}

void WsHub::on_text(const std::shared_ptr<WsConnection>& conn, const std::string& sid, const std::string& text) {
  bool reply = false;
  {
    std::lock_guard lock(mutex_);
    auto it = clients_.find(sid);
    if (it == clients_.end() || it->second.conn != conn) return;
    Client& c = it->second;
    if (!c.first_message) return;
    json msg;
    try {
      msg = json::parse(text);
    } catch (const json::parse_error&) {
      spdlog::warn("Invalid JSON received from client {}: {}", sid, text);
      return;  // an unparsable message does not count as the first one
    }
    c.first_message = false;
    if (msg.is_object() && msg.contains("type") && msg["type"] == "feature_flags") {
      c.flags = msg.contains("data") ? msg["data"] : json::object();
      reply = true;
    }
  }
  if (reply) {
    conn->write(frame("feature_flags", features_()), false);
    spdlog::debug("Feature flags negotiated for client {}", sid);
  }
}

void WsHub::on_close(const std::shared_ptr<WsConnection>& conn, const std::string& sid) {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(sid);
  // Only the socket registered now: a replaced socket closing later must not drop its successor.
  if (it != clients_.end() && it->second.conn == conn) clients_.erase(it);
}

}  // namespace comfy::server
