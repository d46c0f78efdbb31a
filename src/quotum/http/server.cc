#include "quotum/http/server.h"

#include <pthread.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <limits>
#include <list>
#include <optional>

#include "absl/strings/str_cat.h"
#include "quotum/base/mutex.h"
#include "quotum/core/string_views.h"
#include "quotum/http/pushed_body.h"
#include "quotum/http/request_checks.h"

namespace quotum::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {
int64_t NowNanos() { return SteadyClock::now().time_since_epoch().count(); }
/// How long, and for how many bytes, a connection answered before its
/// request was read reads and discards the rest (Session::Linger).
constexpr std::chrono::seconds kLinger{2};
constexpr size_t kMaxLingerBytes = 16 << 20;
/// A pushed body's write that has not completed in this long means a client
/// that stopped reading: the connection is closed (Session::Sweep).
constexpr std::chrono::seconds kPushedWriteTimeout{30};
}  // namespace

// One I/O thread: its io_context, the inbox where other threads leave replies
// for the connections it owns, and the table of those connections.
class Server::Worker {
 public:
  using Executor = net::io_context::executor_type;

  Worker(const ServerOptions& opts, int index)
      : opts_(opts),
        index_(index),
        ioc_(1),
        guard_(net::make_work_guard(ioc_)),
        sweep_timer_(ioc_) {}

  Executor executor() { return ioc_.get_executor(); }
  void Start() {
    ArmSweep();
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "quotum-io");
      if (opts_.on_thread_start) {
        opts_.on_thread_start(
            index_, [this](std::function<void()> task) { net::post(ioc_, std::move(task)); });
      }
      ioc_.run();
      if (opts_.on_thread_exit) opts_.on_thread_exit();
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

  /// The connection table. Entries are added and removed by the worker's
  /// thread; the acceptor reads it (under the lock) to pick one to evict.
  using Slot = std::list<Session*>::iterator;
  Slot Register(Session* s) {
    MutexLock lock(&table_mu_);
    return table_.insert(table_.end(), s);
  }
  void Unregister(Slot slot) {
    MutexLock lock(&table_mu_);
    table_.erase(slot);
  }
  /// Calls `fn(Session&)` for every open connection, under the table lock.
  template <typename Fn>
  void ForEachConnection(Fn&& fn) {
    MutexLock lock(&table_mu_);
    for (Session* s : table_) fn(*s);
  }
  /// On the worker's thread: closes idle connections, and has the others close
  /// once their request is answered.
  void BeginDrain();

 private:
  void Drain();
  void ArmSweep();
  /// Strong references to every connection, taken under the lock.
  std::vector<std::shared_ptr<Session>> Snapshot();

  const ServerOptions& opts_;
  const int index_;
  /// Declared before everything that can hold a Session (the context's
  /// pending handlers, the inbox), so that it outlives them: ~Session
  /// unregisters itself from it.
  Mutex table_mu_;
  std::list<Session*> table_ ABSL_GUARDED_BY(table_mu_);
  net::io_context ioc_;
  net::executor_work_guard<Executor> guard_;
  net::steady_timer sweep_timer_;
  std::thread thread_;
  Mutex mu_;
  std::vector<std::pair<std::shared_ptr<Session>, Reply>> inbox_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::shared_ptr<Session>, Reply>> draining_;  // worker thread only
};

// One connection. Everything runs on its worker's thread except ClaimIdle and
// the reads of phase and idle_since by the acceptor. At most one request is in
// flight per connection (no pipelining), so the handler's reply is the only
// other party and it arrives through Worker::Deliver.
class Server::Session : public std::enable_shared_from_this<Server::Session> {
 public:
  /// kIdle: waiting for the first byte of a request (none in progress; may be
  /// evicted). kReceiving: a request's bytes are arriving. kHandling: the
  /// request is being decided or its response written. kClosed: closed, or
  /// claimed for eviction.
  enum class Phase : uint8_t { kIdle, kReceiving, kHandling, kClosed };

  Session(Socket socket, Server& server, Worker& worker)
      : socket_(std::move(socket)), server_(server), worker_(worker) {}
  ~Session() {
    if (registered_) worker_.Unregister(slot_);
    if (pushed_) pushed_->Detach();
  }

  void Start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->slot_ = self->worker_.Register(self.get());
      self->registered_ = true;
      if (self->server_.draining_.load()) return self->Close();
      self->BeginRequest();
    });
  }

  Phase phase() const { return phase_.load(std::memory_order_acquire); }
  int64_t idle_since() const { return idle_since_.load(std::memory_order_relaxed); }
  /// Any thread: takes an idle connection for eviction (the owner then closes
  /// it); false if a request began meanwhile.
  bool ClaimIdle() {
    Phase p = Phase::kIdle;
    return phase_.compare_exchange_strong(p, Phase::kClosed, std::memory_order_acq_rel);
  }
  Worker& worker() { return worker_; }

  /// Writes the handler's reply; on the worker's thread.
  void Finish(Reply r) {
    counted_ = true;  // in flight until the response has been written
    Write(std::move(r));
  }

  /// On the worker's thread: closes the connection if it is past its timeout.
  void Sweep(SteadyClock::time_point now);

  /// On the worker's thread: an idle connection closes now; one with a request
  /// in progress answers it with "Connection: close" and then closes.
  void BeginDrain() {
    keep_alive_ = false;
    if (pushed_) pushed_->End();  // a pushed body ends, then the connection closes
    if (ClaimIdle()) Close();
  }

  void Close();

 private:
  void BeginRequest();
  void ReadSome();
  void OnReadSome(beast::error_code ec, size_t n);
  /// Feeds buffered bytes to the parser; `ec` is need_more when it wants more.
  void Parse(beast::error_code& ec);
  void OnParseError(beast::error_code ec);
  /// Answers a request whose header CheckFraming refused, and closes.
  void Refuse();
  void OnRequest();
  void Write(Reply r);
  /// Writes out_, then the next piece of a streamed body or OnWritten.
  void WriteOut();
  /// Makes the next piece of a streamed body (on stream_runner_'s thread
  /// when there is one), then SendPiece.
  void WriteNextPiece();
  /// Writes `piece_`, which `stream_` made; `more` is what it answered.
  void SendPiece(absl::StatusOr<bool> more);
  /// Starts a pushed body: watches for the client leaving, waits for pieces.
  void BeginPushed();
  /// Writes what the pushed body holds, or waits for its wake-up.
  void WritePushed();
  void OnWritten(beast::error_code ec);
  /// After answering a request whose body was not read (413, a refused or
  /// malformed request): ends the sending side, then reads and discards what
  /// the client still sends, for at most kLinger, before closing. Closing at
  /// once with unread bytes makes the kernel reset the connection, and the
  /// client may lose the answer.
  void Linger();
  void DiscardSome();

  Socket socket_;
  Server& server_;
  Worker& worker_;
  Worker::Slot slot_;
  bool registered_ = false;
  bool closed_ = false;
  std::atomic<Phase> phase_{Phase::kIdle};
  std::atomic<int64_t> idle_since_{NowNanos()};
  SteadyClock::time_point request_started_ = SteadyClock::now();
  SteadyClock::time_point last_bytes_ = request_started_;
  uint64_t requests_ = 0;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Request req_;
  std::optional<Reply> refused_;
  std::string out_;
  /// The streamed body being written, if any; piece_ receives its next piece.
  BodySource stream_;
  /// Where stream_ makes its pieces; empty: on this I/O thread.
  PieceRunner stream_runner_;
  bool chunked_ = false;
  std::string piece_;
  /// The pushed body being written, if any (Reply::pushed).
  std::shared_ptr<PushedBody> pushed_;
  /// Nothing was queued: the next wake-up writes.
  bool waiting_for_push_ = false;
  /// A piece of the pushed body is being written, since pushed_write_started_.
  bool writing_pushed_ = false;
  SteadyClock::time_point pushed_write_started_;
  /// Receives what a client sends while a pushed body runs (nothing is expected).
  std::array<char, 64> probe_{};
  bool keep_alive_ = true;
  /// The request's bytes were not all read: linger before closing.
  bool unread_input_ = false;
  bool lingering_ = false;
  SteadyClock::time_point linger_until_;
  size_t lingered_bytes_ = 0;
  bool counted_ = false;
  bool head_ = false;
  unsigned version_ = 11;
};

void Server::Session::BeginRequest() {
  if (server_.draining_.load()) return Close();
  parser_.emplace();
  parser_->body_limit(server_.opts_.max_body_bytes);
  parser_->header_limit(16 * 1024);
  idle_since_.store(NowNanos(), std::memory_order_relaxed);
  phase_.store(Phase::kIdle, std::memory_order_release);
  server_.WakeAcceptor();  // a held newcomer may take this connection's slot
  // A pipelined request may already be buffered.
  if (buffer_.size() > 0) return OnReadSome({}, 0);
  ReadSome();
}

void Server::Session::ReadSome() {
  socket_.async_read_some(
      buffer_.prepare(beast::read_size(buffer_, 65536)),
      [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnReadSome(ec, n); });
}

void Server::Session::OnReadSome(beast::error_code ec, size_t n) {
  buffer_.commit(n);
  if (phase() == Phase::kIdle) {
    Phase p = Phase::kIdle;
    if (!phase_.compare_exchange_strong(p, Phase::kReceiving, std::memory_order_acq_rel)) {
      return Close();  // claimed for eviction while idle
    }
    request_started_ = SteadyClock::now();
  } else if (phase() == Phase::kClosed) {
    return Close();
  }
  last_bytes_ = SteadyClock::now();
  if (ec == net::error::eof && parser_->got_some()) {
    ec = {};
    parser_->put_eof(ec);  // a body delimited by the end of the stream is not allowed
    return ec ? OnParseError(ec) : OnRequest();
  }
  if (ec) return Close();  // the peer went away, or the socket was closed
  Parse(ec);
  if (refused_) return Refuse();
  if (ec == bhttp::error::need_more) return ReadSome();
  if (ec) return OnParseError(ec);
  OnRequest();
}

void Server::Session::Parse(beast::error_code& ec) {
  while (!parser_->is_done()) {
    if (buffer_.size() == 0) {
      ec = bhttp::error::need_more;
      return;
    }
    const bool had_header = parser_->is_header_done();
    const size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec) return;
    if (!had_header && parser_->is_header_done()) {
      // Framing is judged before any body byte is read as body.
      refused_ = CheckFraming(parser_->get());
      if (refused_) return;
    }
  }
}

void Server::Session::Refuse() {
  keep_alive_ = false;
  unread_input_ = true;
  phase_.store(Phase::kHandling, std::memory_order_release);
  version_ = parser_->get().version();
  Reply r = *std::move(refused_);
  refused_.reset();
  Write(std::move(r));
}

void Server::Session::OnParseError(beast::error_code ec) {
  keep_alive_ = false;
  unread_input_ = true;
  phase_.store(Phase::kHandling, std::memory_order_release);
  if (ec == bhttp::error::body_limit) {
    return Write(ErrorReply(413, "payload_too_large",
                            absl::StrCat("Request body exceeds the limit of ",
                                         server_.opts_.max_body_bytes, " bytes.")));
  }
  if (ec == bhttp::error::header_limit) {
    return Write(ErrorReply(431, "headers_too_large", "Request headers are too large."));
  }
  Write(ErrorReply(400, "bad_request", "Malformed HTTP request."));
}

void Server::Session::OnRequest() {
  phase_.store(Phase::kHandling, std::memory_order_release);
  ++requests_;
  req_ = parser_->release();
  keep_alive_ = keep_alive_ && req_.keep_alive() && !server_.draining_.load();
  version_ = req_.version();
  head_ = req_.method() == bhttp::verb::head;
  worker_.in_flight.fetch_add(1, std::memory_order_relaxed);
  server_.handler_(req_, [self = shared_from_this()](Reply r) mutable {
    Worker& w = self->worker_;
    w.Deliver(std::move(self), std::move(r));
  });
}

// Formats the head (and a whole body) into one buffer and writes it with one
// call; a streamed body follows piece by piece (WriteNextPiece).
void Server::Session::Write(Reply r) {
  if (r.close_connection) keep_alive_ = false;
  stream_ = head_ ? nullptr : std::move(r.stream);  // HEAD: a GET's headers, no body
  stream_runner_ = stream_ ? std::move(r.stream_runner) : nullptr;
  if (r.pushed && (head_ || stream_)) r.pushed->Detach();
  pushed_ = head_ || stream_ ? nullptr : std::move(r.pushed);
  if (pushed_) keep_alive_ = false;  // it lasts until the client or the server ends it
  const bool piecewise = stream_ || pushed_;
  chunked_ = piecewise && version_ != 10;
  if (piecewise && !chunked_) keep_alive_ = false;  // HTTP/1.0: the close ends the body
  out_.clear();
  const auto status = static_cast<bhttp::status>(r.status);
  absl::StrAppend(&out_, version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", r.status, " ",
                  ToAbsl(std::string_view(bhttp::obsolete_reason(status))),
                  "\r\nServer: quotum\r\n", "Content-Type: ", ToAbsl(r.content_type), "\r\n");
  if (chunked_) {
    out_ += "Transfer-Encoding: chunked\r\n";
  } else if (!piecewise) {
    absl::StrAppend(&out_, "Content-Length: ", r.body.size(), "\r\n");
  }
  out_ += r.headers;
  if (!keep_alive_) {
    out_ += "Connection: close\r\n";
  } else if (version_ == 10) {
    out_ += "Connection: keep-alive\r\n";
  }
  out_ += "\r\n";
  if (!head_ && !piecewise) out_ += r.body;  // HEAD: a GET's headers, no body (RFC 9110 §9.3.2)
  if (pushed_) return BeginPushed();
  WriteOut();
}

void Server::Session::WriteOut() {
  net::async_write(socket_, net::buffer(out_),
                   [self = shared_from_this()](beast::error_code ec, size_t) {
                     if (!ec && self->stream_) return self->WriteNextPiece();
                     if (!ec && self->pushed_) return self->WritePushed();
                     self->OnWritten(ec);
                   });
}

void Server::Session::WriteNextPiece() {
  piece_.clear();
  if (!stream_runner_) return SendPiece(stream_(piece_));
  // The source and the piece go to the runner's thread and come back with
  // the answer; nothing else touches them meanwhile.
  stream_runner_([self = shared_from_this(), executor = socket_.get_executor(),
                  source = std::move(stream_), piece = std::move(piece_)]() mutable {
    absl::StatusOr<bool> more = source(piece);
    net::post(executor, [self = std::move(self), source = std::move(source),
                         piece = std::move(piece), more = std::move(more)]() mutable {
      self->stream_ = std::move(source);
      self->piece_ = std::move(piece);
      self->SendPiece(std::move(more));
    });
  });
  stream_ = nullptr;  // moved to the runner's task; back with its piece
}

void Server::Session::SendPiece(absl::StatusOr<bool> more) {
  if (!more.ok()) {
    // The status line is gone: all that is left is not to end the body.
    stream_ = nullptr;
    keep_alive_ = false;
    return OnWritten(net::error::operation_aborted);
  }
  out_.clear();
  if (!chunked_) {
    out_.swap(piece_);
  } else if (!piece_.empty()) {
    absl::StrAppend(&out_, absl::Hex(piece_.size()), "\r\n", piece_, "\r\n");
  }
  if (!*more) {
    stream_ = nullptr;
    if (chunked_) out_ += "0\r\n\r\n";
  }
  WriteOut();
}

void Server::Session::BeginPushed() {
  // The client sends nothing more on this connection: a read that completes
  // means it left (or broke the protocol), and the body ends with it.
  socket_.async_read_some(net::buffer(probe_),
                          [self = shared_from_this()](beast::error_code, size_t) {
                            if (self->pushed_) self->Close();
                          });
  std::weak_ptr<Session> weak = weak_from_this();
  auto executor = socket_.get_executor();
  pushed_->Attach([weak, executor] {
    net::post(executor, [weak] {
      auto self = weak.lock();
      if (self && self->pushed_ && self->waiting_for_push_) {
        self->waiting_for_push_ = false;
        self->WritePushed();
      }
    });
  });
  if (server_.draining_.load()) pushed_->End();
  writing_pushed_ = true;
  pushed_write_started_ = SteadyClock::now();
  WriteOut();  // the head, then WritePushed
}

void Server::Session::WritePushed() {
  writing_pushed_ = false;
  bool ended = false;
  std::string piece = pushed_->Take(ended);
  if (piece.empty() && !ended) {
    waiting_for_push_ = true;
    return;
  }
  writing_pushed_ = true;
  pushed_write_started_ = SteadyClock::now();
  out_.clear();
  if (!chunked_) {
    out_.swap(piece);
  } else if (!piece.empty()) {
    absl::StrAppend(&out_, absl::Hex(piece.size()), "\r\n", piece, "\r\n");
  }
  if (ended) {
    pushed_->Detach();
    pushed_ = nullptr;
    if (chunked_) out_ += "0\r\n\r\n";
  }
  WriteOut();
}

void Server::Session::OnWritten(beast::error_code ec) {
  if (counted_) {
    counted_ = false;
    worker_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  head_ = false;
  if (!ec && !keep_alive_ && unread_input_) return Linger();
  if (ec || !keep_alive_) return Close();
  BeginRequest();
}

void Server::Session::Linger() {
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return Close();
  lingering_ = true;
  linger_until_ = SteadyClock::now() + kLinger;
  DiscardSome();
}

void Server::Session::DiscardSome() {
  buffer_.clear();
  socket_.async_read_some(buffer_.prepare(65536), [self = shared_from_this()](beast::error_code ec,
                                                                              size_t n) {
    self->lingered_bytes_ += n;
    if (ec || SteadyClock::now() > self->linger_until_ || self->lingered_bytes_ > kMaxLingerBytes) {
      return self->Close();
    }
    self->DiscardSome();
  });
}

void Server::Session::Sweep(SteadyClock::time_point now) {
  const ServerOptions& o = server_.opts_;
  switch (phase()) {
    case Phase::kIdle: {
      // The first request has the header timeout from the connection's start.
      const auto limit = requests_ == 0 ? o.header_timeout : o.idle_timeout;
      const SteadyClock::time_point since{SteadyClock::duration(idle_since())};
      if (now - since > limit && ClaimIdle()) Close();
      return;
    }
    case Phase::kReceiving: {
      const bool late_headers =
          !parser_->is_header_done() && now - request_started_ > o.header_timeout;
      if (late_headers || now - last_bytes_ > o.header_timeout) Close();
      return;
    }
    default:
      if (lingering_ && now > linger_until_) Close();  // a client that neither sends nor closes
      // A stream whose client stopped reading: its queue overflowed, or a write is stuck.
      if (pushed_ && (pushed_->overflowed() ||
                      (writing_pushed_ && now - pushed_write_started_ > kPushedWriteTimeout))) {
        Close();
      }
      return;
  }
}

void Server::Session::Close() {
  if (closed_) return;
  closed_ = true;
  if (pushed_) {
    pushed_->Detach();
    pushed_ = nullptr;
  }
  if (counted_) {  // a pushed body waiting for its next piece has no write to finish
    counted_ = false;
    worker_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  phase_.store(Phase::kClosed, std::memory_order_release);
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  socket_.close(ec);
  if (registered_) {
    registered_ = false;
    worker_.Unregister(slot_);
  }
  server_.OnConnectionClosed();
}

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

std::vector<std::shared_ptr<Server::Session>> Server::Worker::Snapshot() {
  std::vector<std::shared_ptr<Session>> out;
  MutexLock lock(&table_mu_);
  out.reserve(table_.size());
  for (Session* s : table_) {
    if (auto p = s->weak_from_this().lock()) out.push_back(std::move(p));
  }
  return out;
}

void Server::Worker::ArmSweep() {
  sweep_timer_.expires_after(opts_.sweep_interval);
  sweep_timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    const auto now = SteadyClock::now();
    for (auto& s : Snapshot()) s->Sweep(now);
    ArmSweep();
  });
}

void Server::Worker::BeginDrain() {
  for (auto& s : Snapshot()) s->BeginDrain();
}

Server::Server(ServerOptions options, RequestHandler handler)
    : opts_(std::move(options)),
      handler_(std::move(handler)),
      workers_([this, n = std::max(1, opts_.threads)] {
        std::vector<std::unique_ptr<Worker>> w;
        for (int i = 0; i < n; ++i) w.push_back(std::make_unique<Worker>(opts_, i));
        return w;
      }()),
      acceptor_(workers_[0]->executor()),
      accept_retry_(std::make_unique<net::steady_timer>(workers_[0]->executor())) {}

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

bool Server::EvictLongestIdle() {
  for (int attempt = 0; attempt < 4; ++attempt) {
    // A weak reference: dropping it under a table lock can never run ~Session.
    std::weak_ptr<Session> candidate;
    int64_t oldest = std::numeric_limits<int64_t>::max();
    for (auto& w : workers_) {
      w->ForEachConnection([&](Session& s) {
        if (s.phase() != Session::Phase::kIdle || s.idle_since() >= oldest) return;
        oldest = s.idle_since();
        candidate = s.weak_from_this();
      });
    }
    if (oldest == std::numeric_limits<int64_t>::max()) return false;  // none idle
    auto victim = candidate.lock();
    if (victim && victim->ClaimIdle()) {
      net::post(victim->worker().executor(), [victim] { victim->Close(); });
      return true;
    }
  }
  return false;
}

void Server::OnConnectionClosed() {
  open_connections_.fetch_sub(1, std::memory_order_acq_rel);
  WakeAcceptor();
}

// On the acceptor's thread (worker 0), as is everything about accepting.
void Server::Accept() {
  if (draining_.load() || !acceptor_.is_open()) return;
  Worker& w = *workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(w.executor(), [this, &w](beast::error_code ec, Socket s) {
    OnAccepted(w, ec, std::move(s));
  });
}

void Server::OnAccepted(Worker& w, beast::error_code ec, Socket s) {
  if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec == net::error::no_descriptors || ec == net::error::no_buffer_space ||
      ec == net::error::no_memory || ec.value() == ENFILE) {
    // Out of descriptors: try again shortly instead of spinning on the error.
    accept_retry_->expires_after(std::chrono::milliseconds(50));
    accept_retry_->async_wait([this](beast::error_code e) {
      if (!e) Accept();
    });
    return;
  }
  if (ec) return Accept();
  s.set_option(tcp::no_delay(true), ec);
  if (open_connections_.load() >= opts_.max_connections && !EvictLongestIdle()) {
    // Every slot has a request in progress: hold the newcomer, accept no more.
    held_.emplace(std::move(s));
    held_worker_ = &w;
    return PauseAccepting();
  }
  StartSession(w, std::move(s));
  Accept();
}

void Server::StartSession(Worker& w, Socket s) {
  open_connections_.fetch_add(1, std::memory_order_acq_rel);
  std::make_shared<Session>(std::move(s), *this, w)->Start();
}

void Server::PauseAccepting() {
  accept_paused_.store(true, std::memory_order_seq_cst);
  // A close or an idle connection between the check and the flag would not
  // wake us; a slow retry covers that window.
  accept_retry_->expires_after(std::chrono::milliseconds(50));
  accept_retry_->async_wait([this](beast::error_code e) {
    if (!e && accept_paused_.exchange(false)) ResumeAccepting();
  });
}

void Server::WakeAcceptor() {
  if (accept_paused_.load(std::memory_order_relaxed) && accept_paused_.exchange(false)) {
    net::post(acceptor_.get_executor(), [this] { ResumeAccepting(); });
  }
}

void Server::ResumeAccepting() {
  if (!held_ || draining_.load()) return;
  if (open_connections_.load() >= opts_.max_connections && !EvictLongestIdle()) {
    return PauseAccepting();
  }
  Socket s = std::move(*held_);
  held_.reset();
  StartSession(*held_worker_, std::move(s));
  Accept();
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
    accept_retry_->cancel();
    held_.reset();
  });
  for (auto& w : workers_) net::post(w->executor(), [w = w.get()] { w->BeginDrain(); });
  auto deadline = SteadyClock::now() + grace;
  while ((open_connections_.load() > 0 || in_flight() > 0) && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  StopWorkers();
}

}  // namespace quotum::http
