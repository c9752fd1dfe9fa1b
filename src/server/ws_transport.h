// Private to the transport (http.cpp and ws.cpp): hands an upgraded socket to the hub, over plain
// TCP or over TLS.
#pragma once
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "server/ws.h"

namespace comfy::server {

void accept_websocket(WsHub& hub, boost::beast::tcp_stream stream,
                      boost::beast::http::request<boost::beast::http::string_body> request, std::string sid);
void accept_websocket(WsHub& hub, boost::beast::ssl_stream<boost::beast::tcp_stream> stream,
                      boost::beast::http::request<boost::beast::http::string_body> request, std::string sid);

}  // namespace comfy::server
