#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  /// Open connections at most (see Server's class comment for what happens at the cap).
  int max_connections = 1024;
  /// A connection waiting for its next request is closed after this long.
  std::chrono::milliseconds idle_timeout{30'000};
  /// A request's line and headers must arrive within this long of its first
  /// byte (of the connection's start, for its first request); a body may not
  /// stall for longer.
  std::chrono::milliseconds header_timeout{10'000};
  /// How often each I/O thread looks for connections past their timeouts.
  std::chrono::milliseconds sweep_interval{500};
  /// Called on each I/O thread (numbered from 0) before it serves, with a
  /// function that runs a task on that thread after the handlers already
  /// queued there (the engine binds the thread's journal with it).
  std::function<void(int index, std::function<void(std::function<void()>)> post)> on_thread_start;
  /// Called on each I/O thread once it has stopped serving.
  std::function<void()> on_thread_exit;
};

/// HTTP/1.1 server on Boost.Beast: keep-alive, one request at a time per
/// connection, a body limit that answers 413, and a graceful drain.
///
/// Defences: at `max_connections` open connections, accepting a newcomer
/// first closes the longest-idle connection that has no request in progress
/// (one that has sent nothing yet, or an idle keep-alive one), as nginx does
/// with its reusable connections; only when every connection has a request
/// in progress does accepting pause, until one closes. Running out of file
/// descriptors pauses accepting briefly instead of spinning. Slow or silent
/// clients are closed by the idle and header timeouts.
///
/// Drain (Shutdown): accepting stops, connections with no request in progress
/// are closed, and every request already begun is read to its end, answered
/// (with "Connection: close") and its connection closed, within the grace.
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
  /// Connections open now.
  int64_t open_connections() const { return open_connections_.load(); }
  /// True from the start of Shutdown.
  bool draining() const { return draining_.load(); }

 private:
  class Session;
  class Worker;
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp,
                                                  boost::asio::io_context::executor_type>;
  void Accept();
  void OnAccepted(Worker& w, boost::system::error_code ec, Socket socket);
  void StartSession(Worker& w, Socket socket);
  /// Stops accepting while a newcomer is held for want of a slot.
  void PauseAccepting();
  /// Gives the held newcomer a slot if one is free or can be made, else pauses again.
  void ResumeAccepting();
  /// Any thread: a slot may have freed (a close) or become reclaimable (an idle connection).
  void WakeAcceptor();
  /// Frees a slot by closing the longest-idle connection with no request in
  /// progress; false when every connection has one.
  bool EvictLongestIdle();
  /// Called when a connection closes: resumes a paused acceptor.
  void OnConnectionClosed();
  void StopWorkers();

  ServerOptions opts_;
  RequestHandler handler_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;  // round-robin for accepted connections
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> open_connections_{0};
  std::atomic<bool> accept_paused_{false};
  /// Retries accepting after the process ran out of descriptors, or while paused.
  std::unique_ptr<boost::asio::steady_timer> accept_retry_;
  /// A newcomer accepted at the cap, waiting for a slot (acceptor's thread only).
  std::optional<Socket> held_;
  Worker* held_worker_ = nullptr;
};

}  // namespace quotum::http
