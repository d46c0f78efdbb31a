#include "quotum/http/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "quotum/core/string_views.h"

namespace quotum::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// One connection. Everything runs on the connection's strand; at most one
// request is in flight per connection (no pipelining), so the engine's
// completion is the only other party and it posts back to the strand.
class Server::Session : public std::enable_shared_from_this<Server::Session> {
 public:
  using Executor = net::strand<net::io_context::executor_type>;
  using Socket = net::basic_stream_socket<tcp, Executor>;

  Session(Socket socket, Server& server)
      : socket_(std::move(socket)), idle_timer_(socket_.get_executor()), server_(server) {}

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
    server_.in_flight_.fetch_add(1);
    server_.handler_(req_, [self = shared_from_this()](Reply r) mutable {
      net::post(self->socket_.get_executor(),
                [self, r = std::move(r)]() mutable { self->Finish(std::move(r)); });
    });
  }

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
                    "\r\nServer: quotum\r\n", "Content-Type: ", r.content_type,
                    "\r\nContent-Length: ", r.body.size(), "\r\n");
    for (const auto& [k, v] : r.headers) absl::StrAppend(&out_, k, ": ", v, "\r\n");
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
                         self->server_.in_flight_.fetch_sub(1);
                       }
                       self->busy_ = false;
                       if (ec || !self->keep_alive_) return self->Close();
                       self->Read();
                     });
  }

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

Server::Server(ServerOptions options, RequestHandler handler)
    : opts_(std::move(options)),
      handler_(std::move(handler)),
      ioc_(opts_.threads),
      acceptor_(net::make_strand(ioc_)) {}

Server::~Server() {
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
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
  acceptor_.async_accept(net::make_strand(ioc_.get_executor()),
                         [this](beast::error_code ec, Session::Socket s) {
                           if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
                           if (!ec) {
                             s.set_option(tcp::no_delay(true), ec);
                             std::make_shared<Session>(std::move(s), *this)->Start();
                           }
                           Accept();
                         });
}

void Server::Run() {
  Accept();
  for (int i = 0; i < opts_.threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  draining_.store(true);
  net::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ioc_.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace quotum::http
