#include "quotum/http/server.h"

#include <pthread.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "quotum/base/mutex.h"
#include "quotum/core/string_views.h"

namespace quotum::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// One I/O thread: its io_context, and the inbox where other threads leave
// replies for the connections it owns.
class Server::Worker {
 public:
  using Executor = net::io_context::executor_type;

  Worker() : ioc_(1), guard_(net::make_work_guard(ioc_)) {}

  Executor executor() { return ioc_.get_executor(); }
  void Start() {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "quotum-io");
      ioc_.run();
    });
  }
  void Stop() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  /// Requests read and not yet answered on this worker's connections. Changed
  /// only by the worker's thread (no cache line shared between workers).
  std::atomic<int64_t> in_flight{0};

  /// Has `session` write `reply` on this worker's thread: at once when called there,
  /// otherwise through the inbox, posting one drain per burst of replies.
  void Deliver(std::shared_ptr<Session> session, Reply reply);

 private:
  void Drain();

  net::io_context ioc_;
  net::executor_work_guard<Executor> guard_;
  std::thread thread_;
  Mutex mu_;
  std::vector<std::pair<std::shared_ptr<Session>, Reply>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::shared_ptr<Session>, Reply>> draining_;  // worker thread only
};

// One connection. Everything runs on its worker's thread; at most one request
// is in flight per connection (no pipelining), so the handler's reply is the
// only other party and it arrives through Worker::Deliver.
class Server::Session : public std::enable_shared_from_this<Server::Session> {
 public:
  using Executor = Worker::Executor;
  using Socket = net::basic_stream_socket<tcp, Executor>;

  Session(Socket socket, Server& server, Worker& worker)
      : socket_(std::move(socket)),
        idle_timer_(socket_.get_executor()),
        server_(server),
        worker_(worker) {}

  void Start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->ArmIdleTimer();
      self->Read();
    });
  }

 private:
  static constexpr std::chrono::seconds kIdleLimit{60};

  // One timer per connection, checked every 30 s, instead of one per operation.
  void ArmIdleTimer() {
    idle_timer_.expires_after(std::chrono::seconds(30));
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->socket_.is_open()) return;
      if (!self->busy_ && std::chrono::steady_clock::now() - self->last_activity_ > kIdleLimit) {
        return self->Close();
      }
      self->ArmIdleTimer();
    });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(server_.opts_.max_body_bytes);
    parser_->header_limit(16 * 1024);
    last_activity_ = std::chrono::steady_clock::now();
    bhttp::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::bad_descriptor) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      return Write(ErrorReply(413, "payload_too_large",
                              absl::StrCat("Request body exceeds the limit of ",
                                           server_.opts_.max_body_bytes, " bytes.")));
    }
    if (ec == bhttp::error::header_limit) {
      keep_alive_ = false;
      return Write(ErrorReply(431, "headers_too_large", "Request headers are too large."));
    }
    if (ec) {
      keep_alive_ = false;
      return Write(ErrorReply(400, "bad_request", "Malformed HTTP request."));
    }
    req_ = parser_->release();
    keep_alive_ = req_.keep_alive() && !server_.draining_.load();
    version_ = req_.version();
    busy_ = true;
    worker_.in_flight.fetch_add(1, std::memory_order_relaxed);
    server_.handler_(req_, [self = shared_from_this()](Reply r) mutable {
      Worker& w = self->worker_;
      w.Deliver(std::move(self), std::move(r));
    });
  }

 public:
  /// Writes the handler's reply; on the worker's thread.
  void Finish(Reply r) {
    counted_ = true;  // in flight until the response has been written
    Write(std::move(r));
  }

  // Formats the whole response into one buffer and writes it with one call.
  void Write(Reply r) {
    out_.clear();
    const auto status = static_cast<bhttp::status>(r.status);
    absl::StrAppend(&out_, version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", r.status, " ",
                    ToAbsl(std::string_view(bhttp::obsolete_reason(status))),
                    "\r\nServer: quotum\r\n", "Content-Type: ", ToAbsl(r.content_type),
                    "\r\nContent-Length: ", r.body.size(), "\r\n");
    out_ += r.headers;
    if (!keep_alive_) {
      out_ += "Connection: close\r\n";
    } else if (version_ == 10) {
      out_ += "Connection: keep-alive\r\n";
    }
    out_ += "\r\n";
    out_ += r.body;
    net::async_write(socket_, net::buffer(out_),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (self->counted_) {
                         self->counted_ = false;
                         self->worker_.in_flight.fetch_sub(1, std::memory_order_relaxed);
                       }
                       self->busy_ = false;
                       if (ec || !self->keep_alive_) return self->Close();
                       self->Read();
                     });
  }

 private:
  void Close() {
    beast::error_code ec;
    idle_timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  Socket socket_;
  net::basic_waitable_timer<std::chrono::steady_clock, net::wait_traits<std::chrono::steady_clock>,
                            Executor>
      idle_timer_;
  Server& server_;
  Worker& worker_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request req_;
  std::string out_;
  std::chrono::steady_clock::time_point last_activity_;
  bool keep_alive_ = true;
  bool counted_ = false;
  bool busy_ = false;
  unsigned version_ = 11;
};

void Server::Worker::Deliver(std::shared_ptr<Session> session, Reply reply) {
  if (ioc_.get_executor().running_in_this_thread()) return session->Finish(std::move(reply));
  bool first;
  {
    MutexLock lock(&mu_);
    first = inbox_.empty();
    inbox_.emplace_back(std::move(session), std::move(reply));
  }
  if (first) net::post(ioc_, [this] { Drain(); });
}

void Server::Worker::Drain() {
  {
    MutexLock lock(&mu_);
    draining_.swap(inbox_);
  }
  for (auto& [session, reply] : draining_) session->Finish(std::move(reply));
  draining_.clear();
}

Server::Server(ServerOptions options, RequestHandler handler)
    : opts_(std::move(options)),
      handler_(std::move(handler)),
      workers_([n = std::max(1, opts_.threads)] {
        std::vector<std::unique_ptr<Worker>> w;
        for (int i = 0; i < n; ++i) w.push_back(std::make_unique<Worker>());
        return w;
      }()),
      acceptor_(workers_[0]->executor()) {}

Server::~Server() { StopWorkers(); }

int64_t Server::in_flight() const {
  int64_t n = 0;
  for (const auto& w : workers_) n += w->in_flight.load(std::memory_order_relaxed);
  return n;
}

void Server::StopWorkers() {
  for (auto& w : workers_) w->Stop();
}

absl::StatusOr<std::string> Server::Listen() {
  beast::error_code ec;
  auto addr = net::ip::make_address(opts_.host, ec);
  if (ec) return absl::InvalidArgumentError(Cat("bad listen host \"", opts_.host, "\""));
  tcp::endpoint ep(addr, opts_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        Cat("cannot listen on ", opts_.host, ":", opts_.port, ": ", ec.message()));
  }
  auto local = acceptor_.local_endpoint();
  std::string host = local.address().to_string();
  if (local.address().is_v6()) host = Cat("[", host, "]");
  return Cat(host, ":", local.port());
}

void Server::Accept() {
  Worker& w = *workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(w.executor(), [this, &w](beast::error_code ec, Session::Socket s) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      s.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(s), *this, w)->Start();
    }
    Accept();
  });
}

void Server::Run() {
  Accept();
  for (auto& w : workers_) w->Start();
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  draining_.store(true);
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  StopWorkers();
}

}  // namespace quotum::http
