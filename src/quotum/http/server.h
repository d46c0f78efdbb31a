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
///
/// Threading: each I/O thread runs its own io_context and owns the connections
/// accepted onto it, so a connection's handlers never need a strand. A reply
/// produced on another thread (the store's writer) is queued in the owning
/// thread's inbox; one posted drain answers every reply queued meanwhile.
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

  /// Requests read and not yet answered, over all I/O threads.
  int64_t in_flight() const;

 private:
  class Session;
  class Worker;
  void Accept();
  void StopWorkers();

  ServerOptions opts_;
  RequestHandler handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;  // round-robin for accepted connections
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> draining_{false};
};

}  // namespace quotum::http
