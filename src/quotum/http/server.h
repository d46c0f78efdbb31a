#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "quotum/http/reply.h"

namespace quotum::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

/// Handles one parsed request and completes it through `respond` (any thread).
using RequestHandler = std::function<void(const Request&, Respond)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  int threads = 2;
  uint64_t max_body_bytes = 1 << 20;
};

/// HTTP/1.1 server on Boost.Beast: keep-alive, one request at a time per
/// connection, a body limit that answers 413, and a graceful drain.
class Server {
 public:
  Server(ServerOptions options, RequestHandler handler);
  ~Server();

  /// Binds and listens; returns the bound endpoint ("host:port").
  absl::StatusOr<std::string> Listen();
  /// Starts the I/O threads (accepting begins).
  void Run();
  /// Stops accepting, waits up to `grace` for in-flight requests to be
  /// answered, then stops the I/O threads.
  void Shutdown(std::chrono::milliseconds grace);

  boost::asio::io_context& io() { return ioc_; }
  int64_t in_flight() const { return in_flight_.load(); }

 private:
  class Session;
  void Accept();

  ServerOptions opts_;
  RequestHandler handler_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace quotum::http
