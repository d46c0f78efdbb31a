// A pushed body (Server-Sent Events) through the real server: pieces pushed
// from another thread reach the client as chunks, the client leaving is seen
// by the producer, and a drain ends the body with its final chunk.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "quotum/base/mutex.h"
#include "quotum/http/pushed_body.h"
#include "quotum/http/server.h"
#include "quotum/testing/raw_connection.h"
#include "support/bound_port.h"

namespace quotum::http {
namespace {

using std::chrono::milliseconds;
using testing::RawConnection;

constexpr std::string_view kGet = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";

// A server whose every request is answered with a fresh pushed body, kept
// here for the test to push into.
class PushingServer {
 public:
  PushingServer()
      : server_({"127.0.0.1", 0, 2, 1 << 20}, [this](const Request&, Respond respond) {
          auto body = std::make_shared<PushedBody>();
          {
            MutexLock lock(&mu_);
            body_ = body;
          }
          Reply r;
          r.content_type = "text/event-stream";
          r.pushed = std::move(body);
          respond(std::move(r));
        }) {
    auto bound = server_.Listen();
    EXPECT_TRUE(bound.ok()) << bound.status();
    port_ = PortOf(*bound);
    server_.Run();
  }
  ~PushingServer() { server_.Shutdown(milliseconds(2000)); }

  /// The body of the last request, once it arrived.
  std::shared_ptr<PushedBody> WaitForBody() {
    for (int i = 0; i < 500; ++i) {
      {
        MutexLock lock(&mu_);
        if (body_) return body_;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return nullptr;
  }
  /// Sends `request` on `conn` and reads the response's head into `got`;
  /// the body the server answered with, or null.
  std::shared_ptr<PushedBody> Ask(RawConnection& conn, std::string& got,
                                  std::string_view request = kGet) {
    EXPECT_TRUE(conn.Send(request));
    auto body = WaitForBody();
    EXPECT_TRUE(conn.ReadUntil(got, "\r\n\r\n", 0, milliseconds(2000))) << got;
    return body;
  }
  Server& server() { return server_; }
  int port() const { return port_; }

 private:
  Mutex mu_;
  std::shared_ptr<PushedBody> body_ ABSL_GUARDED_BY(mu_);
  Server server_;
  int port_ = 0;
};

TEST(PushedBodyTest, PiecesPushedLaterArriveAsChunksAndTheEndClosesTheBody) {
  PushingServer s;
  RawConnection conn(s.port());
  std::string got;
  auto body = s.Ask(conn, got);
  ASSERT_NE(body, nullptr);
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  EXPECT_NE(got.find("Content-Type: text/event-stream"), std::string::npos) << got;
  const size_t head = got.size();
  // Nothing is written until something is pushed; then it comes at once.
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(body->Push("data: one\n\n"));
  ASSERT_TRUE(conn.ReadUntil(got, "data: one", head, milliseconds(2000))) << got;
  EXPECT_TRUE(body->Push("data: two\n\n"));
  body->End();
  EXPECT_FALSE(body->Push("data: three\n\n"));  // after the end, nothing more
  got += conn.ReadUntilClose(milliseconds(2000));
  EXPECT_NE(got.find("b\r\ndata: two\n\n\r\n0\r\n\r\n"), std::string::npos) << got;
  EXPECT_EQ(got.find("three"), std::string::npos);
}

TEST(PushedBodyTest, TheProducerSeesTheClientLeave) {
  PushingServer s;
  std::shared_ptr<PushedBody> body;
  {
    RawConnection conn(s.port());
    std::string got;
    body = s.Ask(conn, got);
    ASSERT_NE(body, nullptr);
    EXPECT_FALSE(body->finished());
  }  // the client closes its socket
  for (int i = 0; i < 200 && !body->finished(); ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(body->finished());
  EXPECT_FALSE(body->Push("data: late\n\n"));
  for (int i = 0; i < 200 && (s.server().in_flight() != 0 || s.server().open_connections() != 0);
       ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(s.server().in_flight(), 0);
  EXPECT_EQ(s.server().open_connections(), 0);
}

TEST(PushedBodyTest, ADrainEndsTheBodyWithItsFinalChunk) {
  PushingServer s;
  RawConnection conn(s.port());
  std::string got;
  auto body = s.Ask(conn, got);
  ASSERT_NE(body, nullptr);
  const auto started = std::chrono::steady_clock::now();
  s.server().Shutdown(milliseconds(5000));
  // The drain did not wait for the grace: the body ended at once.
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(2000));
  got += conn.ReadUntilClose(milliseconds(2000));
  EXPECT_NE(got.find("0\r\n\r\n"), std::string::npos) << got;
  EXPECT_TRUE(body->finished());
}

TEST(PushedBodyTest, AClientThatStopsReadingIsCutOffOnceItsQueueOverflows) {
  PushingServer s;
  RawConnection conn(s.port());  // sends its request, then never reads
  std::string got;
  auto body = s.Ask(conn, got);
  ASSERT_NE(body, nullptr);
  const std::string piece(64 * 1024, 'x');
  bool refused = false;
  // The kernel's socket buffers take some megabytes; then the queue fills.
  for (int i = 0; i < 4096 && !refused; ++i) refused = !body->Push(piece);
  ASSERT_TRUE(refused);
  EXPECT_TRUE(body->overflowed());
  for (int i = 0; i < 300 && s.server().open_connections() != 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(s.server().open_connections(), 0);  // the sweep closed it
}

TEST(PushedBodyTest, AHeadRequestGetsNoBodyAndTheProducerIsTold) {
  PushingServer s;
  RawConnection conn(s.port());
  std::string got;
  auto body = s.Ask(conn, got, "HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(body, nullptr);
  for (int i = 0; i < 200 && !body->finished(); ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_TRUE(body->finished());
  EXPECT_FALSE(body->Push("data: x\n\n"));
}

}  // namespace
}  // namespace quotum::http
