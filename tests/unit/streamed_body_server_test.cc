// A streamed body (Reply::stream) through the real server, its pieces made by
// a stream_runner's thread: they arrive in order as chunks, the one I/O thread
// answers another connection while a piece waits, and a piece that fails ends
// the body without its final chunk.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "quotum/base/mutex.h"
#include "quotum/base/task_pool.h"
#include "quotum/http/server.h"
#include "quotum/testing/raw_connection.h"
#include "support/bound_port.h"

namespace quotum::http {
namespace {

using std::chrono::milliseconds;
using testing::RawConnection;

// One I/O thread. GET /ping answers "pong"; any other request streams
// "piece0".."piece2", the second made only once the gate opens, on the pool
// (or, for /fail, failing instead).
class StreamingServer {
 public:
  StreamingServer()
      : server_({"127.0.0.1", 0, 1, 1 << 20}, [this](const Request& req, Respond respond) {
          Reply r;
          if (req.target() == "/ping") {
            r.body = "pong";
            return respond(std::move(r));
          }
          const bool fail = req.target() == "/fail";
          r.content_type = "text/plain";
          r.stream = [this, fail, n = 0](std::string& out) mutable -> absl::StatusOr<bool> {
            if (n == 1) {
              WaitForTheGate();
              if (fail) return absl::UnavailableError("the store went away");
            }
            out = "piece" + std::to_string(n);
            return ++n < 3;
          };
          r.stream_runner = [this](absl::AnyInvocable<void()> task) { pool_.Run(std::move(task)); };
          respond(std::move(r));
        }) {
    auto bound = server_.Listen();
    EXPECT_TRUE(bound.ok()) << bound.status();
    port_ = PortOf(*bound);
    server_.Run();
  }
  ~StreamingServer() {
    Open();
    server_.Shutdown(milliseconds(2000));
  }

  /// Lets the waiting piece be made.
  void Open() {
    MutexLock lock(&mu_);
    open_ = true;
    opened_.SignalAll();
  }
  int port() const { return port_; }

 private:
  void WaitForTheGate() {
    MutexLock lock(&mu_);
    while (!open_) opened_.Wait(&mu_);
  }

  Mutex mu_;
  CondVar opened_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  Server server_;
  // Declared after server_: destroyed first, once Shutdown has stopped the
  // I/O threads, running any piece left before the server goes.
  TaskPool pool_{1, "test-pieces"};
  int port_ = 0;
};

/// Asks for `path` on `conn`; what came up to the first piece ("" if it did not).
std::string FirstPiece(RawConnection& conn, std::string_view path) {
  std::string got;
  if (!conn.Send("GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\n\r\n")) return "";
  return conn.ReadUntil(got, "piece0", 0, milliseconds(2000)) ? got : "";
}

TEST(StreamedBodyTest, APieceMadeOffTheIoThreadHoldsUpNoOtherConnection) {
  StreamingServer s;
  RawConnection stream(s.port());
  std::string got = FirstPiece(stream, "/export");
  ASSERT_NE(got, "");
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos) << got;
  // The second piece waits on its pool thread; the only I/O thread is free.
  RawConnection ping(s.port());
  ASSERT_TRUE(ping.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string pong = ping.ReadResponse(milliseconds(2000));
  EXPECT_NE(pong.find("200 OK"), std::string::npos) << pong;
  EXPECT_NE(pong.find("pong"), std::string::npos) << pong;
  EXPECT_EQ(got.find("piece1"), std::string::npos) << "the gate was still closed";
  s.Open();
  ASSERT_TRUE(stream.ReadUntil(got, "0\r\n\r\n", got.find("piece0"), milliseconds(2000))) << got;
  EXPECT_NE(got.find("6\r\npiece0\r\n6\r\npiece1\r\n6\r\npiece2\r\n0\r\n\r\n"), std::string::npos)
      << got;
  // The connection is kept: it answers its next request.
  ASSERT_TRUE(stream.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string next;
  EXPECT_TRUE(stream.ReadUntil(next, "pong", 0, milliseconds(2000))) << next;
}

TEST(StreamedBodyTest, APieceThatFailsOffTheIoThreadEndsTheBodyWithoutItsLastChunk) {
  StreamingServer s;
  RawConnection stream(s.port());
  std::string got = FirstPiece(stream, "/fail");
  ASSERT_NE(got, "");
  s.Open();
  got += stream.ReadUntilClose(milliseconds(2000));
  EXPECT_TRUE(stream.PeerClosed(milliseconds(100)));
  EXPECT_EQ(got.find("0\r\n\r\n"), std::string::npos) << "a failed body must look incomplete";
  EXPECT_EQ(got.find("piece1"), std::string::npos) << got;
}

// HTTP/1.0 has no chunks: the body ends when the connection closes, even when
// the client asked to keep it.
TEST(StreamedBodyTest, AnHttp10StreamEndsWithTheConnectionEvenWhenAskedToKeepIt) {
  StreamingServer s;
  s.Open();
  RawConnection stream(s.port());
  ASSERT_TRUE(stream.Send("GET /export HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  const std::string got = stream.ReadUntilClose(milliseconds(2000));
  EXPECT_TRUE(stream.PeerClosed(milliseconds(100))) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_EQ(got.find("Transfer-Encoding"), std::string::npos) << got;
  EXPECT_TRUE(got.ends_with("\r\n\r\npiece0piece1piece2")) << got;
}

}  // namespace
}  // namespace quotum::http
