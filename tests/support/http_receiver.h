// A real HTTP receiver for tests of what Quotum sends (webhooks): it runs on
// 127.0.0.1, port 0, in a thread of its own, and records what arrives.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace quotum::testing {

namespace receiver_detail {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
}  // namespace receiver_detail

/// A synchronous HTTP/1.1 receiver on 127.0.0.1, one connection at a time.
/// Records every request it reads; `answer` makes the reply, and a null
/// `answer` never replies (it holds the connection until destroyed).
class Receiver {
  using tcp = receiver_detail::tcp;

 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;
  using Answer = std::function<Response(const Request&)>;

  explicit Receiver(Answer answer) : answer_(std::move(answer)) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~Receiver() { Stop(); }

  /// Stops serving and waits for the connection in hand to end.
  void Stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    stopped_.notify_all();
    boost::system::error_code ec;
    tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);  // ends the blocking accept
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string Url(const std::string& path = "/hook") const {
    return absl::StrCat("http://127.0.0.1:", port(), path);
  }
  /// Answers the client stopped reading before their end.
  int unsent_answers() const { return unsent_answers_; }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (true) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || Stopping()) return;
      Handle(socket);
    }
  }

  void Handle(tcp::socket& socket) {
    boost::system::error_code ec;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request_parser<boost::beast::http::string_body> parser;
    parser.body_limit(8 << 20);
    boost::beast::http::read(socket, buffer, parser, ec);
    if (ec) return;
    const Request& request = parser.get();
    std::unique_lock<std::mutex> lock(mu_);
    requests_.push_back(request);
    if (!answer_) {
      stopped_.wait(lock, [this] { return stop_; });
      return;
    }
    lock.unlock();
    Response response = answer_(request);
    response.prepare_payload();
    boost::beast::http::write(socket, response, ec);
    if (ec) ++unsent_answers_;
    socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stop_;
  }

  Answer answer_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_{io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
  mutable std::mutex mu_;
  std::condition_variable stopped_;
  bool stop_ = false;
  std::vector<Request> requests_;
  std::atomic<int> unsent_answers_{0};
  std::thread thread_;
};

}  // namespace quotum::testing
