// A real SMTP server for tests of the e-mail Quotum sends: it runs on
// 127.0.0.1, port 0, in a thread of its own, speaks just enough ESMTP (EHLO,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT) and records every message.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <istream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace quotum::testing {

class SmtpSink {
 public:
  struct Message {
    std::string from;
    std::vector<std::string> to;
    std::string data;  ///< headers and body, as sent (CRLF, dot-stuffing undone)
  };

  SmtpSink() : thread_([this] { Serve(); }) {}
  ~SmtpSink() {
    stop_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<Message> messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }

 private:
  using tcp = boost::asio::ip::tcp;

  void Serve() {
    while (!stop_) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      Converse(socket);
    }
  }

  static void Say(tcp::socket& s, const std::string& line) {
    boost::system::error_code ec;
    boost::asio::write(s, boost::asio::buffer(line + "\r\n"), ec);
  }

  // One SMTP session, until QUIT or the client goes.
  void Converse(tcp::socket& s) {
    boost::asio::streambuf in;
    boost::system::error_code ec;
    Say(s, "220 sink ESMTP");
    Message m;
    for (;;) {
      boost::asio::read_until(s, in, "\r\n", ec);
      if (ec) return;
      std::istream lines(&in);
      std::string line;
      std::getline(lines, line);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const std::string verb = line.substr(0, 4);
      if (verb == "EHLO" || verb == "HELO") {
        Say(s, "250-sink\r\n250 8BITMIME");
      } else if (verb == "MAIL") {
        m = Message{line.substr(10), {}, ""};
        Say(s, "250 OK");
      } else if (verb == "RCPT") {
        m.to.push_back(line.substr(8));
        Say(s, "250 OK");
      } else if (verb == "DATA") {
        Say(s, "354 go on");
        boost::asio::read_until(s, in, "\r\n.\r\n", ec);
        if (ec) return;
        std::string data(boost::asio::buffers_begin(in.data()),
                         boost::asio::buffers_end(in.data()));
        const size_t end = data.find("\r\n.\r\n");
        in.consume(end + 5);
        m.data = data.substr(0, end + 2);
        {
          std::lock_guard<std::mutex> lock(mu_);
          messages_.push_back(m);
        }
        Say(s, "250 queued");
      } else if (verb == "QUIT") {
        Say(s, "221 bye");
        return;
      } else {
        Say(s, "250 OK");  // RSET, NOOP
      }
    }
  }

  boost::asio::io_context io_;
  tcp::acceptor acceptor_{io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Message> messages_;
  std::thread thread_;
};

}  // namespace quotum::testing
