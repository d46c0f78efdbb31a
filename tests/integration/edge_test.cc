// The HTTP edge against hostile or careless clients: descriptor exhaustion,
// ambiguous framing, draining, and what error bodies echo back.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "harness.h"
#include "quotum/testing/raw_connection.h"

namespace quotum::itest {
namespace {

using std::chrono::milliseconds;
using testing::CountResponses;
using testing::RawConnection;
using testing::StatusOf;
using SteadyClock = std::chrono::steady_clock;

constexpr milliseconds kWait{3000};

// User + system CPU time of a process, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);
    if (i == 15) break;
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

class EdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("quotum-edge-");
    server_ = StartServer(dir_);
    ASSERT_TRUE(server_ && server_->port() > 0);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  // Sends `bytes` on a new connection and reads until the server closes it.
  std::string Exchange(const std::string& bytes) {
    RawConnection c(server_->port());
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE(c.Send(bytes));
    return c.ReadUntilClose(kWait);
  }
  std::string dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

// Finding 1: idle connections past the descriptor limit must not stop the server.
TEST(EdgeLimitsTest, IdleConnectionsBeyondTheFileLimitDoNotStopTheServer) {
  rlimit own{};
  getrlimit(RLIMIT_NOFILE, &own);
  own.rlim_cur = std::max<rlim_t>(own.rlim_cur, std::min<rlim_t>(own.rlim_max, 4096));
  setrlimit(RLIMIT_NOFILE, &own);
  ASSERT_GE(own.rlim_cur, 1300u) << "the test needs 1,300 descriptors of its own";

  testing::ServerProcess::Options o;
  o.binary = BinaryPath();
  o.config = QUOTUM_EXAMPLE_CONFIG;
  o.data_dir = testing::MakeTempDir("quotum-fd-");
  o.admin_key = kAdminKey;
  o.max_open_files = 1024;
  testing::ServerProcess server(o);
  ASSERT_TRUE(server.Start()) << server.error();

  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 1100; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server.port()));
    ASSERT_TRUE(idle.back()->ok()) << "connection " << i;
  }
  std::this_thread::sleep_for(milliseconds(300));  // let the server take them in

  const double cpu_before = CpuSeconds(server.pid());
  const auto wall_before = SteadyClock::now();
  milliseconds slowest{0};
  for (int i = 0; i < 20; ++i) {
    const auto started = SteadyClock::now();
    RawConnection c(server.port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(c.Send("GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"));
    const std::string reply = c.ReadResponse(milliseconds(2000));
    EXPECT_EQ(StatusOf(reply), 200) << "request " << i << " got: " << reply;
    slowest =
        std::max(slowest, std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started));
    std::this_thread::sleep_for(milliseconds(50));
  }
  const double wall = std::chrono::duration<double>(SteadyClock::now() - wall_before).count();
  const double cpu_share = (CpuSeconds(server.pid()) - cpu_before) / wall;
  std::cout << "1,100 idle connections under ulimit -n 1024: slowest /healthz " << slowest.count()
            << " ms, server CPU " << cpu_share * 100 << " %" << std::endl;
  EXPECT_LT(slowest, milliseconds(200));
  EXPECT_LT(cpu_share, 0.5);
  idle.clear();
  EXPECT_EQ(server.Stop(), 0);
}

// A copy of the example config with `lines` added to its [server] table.
std::string ConfigWith(const std::string& dir, const std::string& lines) {
  std::ifstream in(QUOTUM_EXAMPLE_CONFIG);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  text.replace(text.find("[server]\n"), 9, "[server]\n" + lines);
  const std::string path = dir + "/quotum.toml";
  std::ofstream(path) << text;
  return path;
}

std::unique_ptr<testing::ServerProcess> StartWithConfig(const std::string& server_lines) {
  testing::ServerProcess::Options o;
  o.binary = BinaryPath();
  o.data_dir = testing::MakeTempDir("quotum-edge-cfg-");
  o.config = ConfigWith(o.data_dir, server_lines);
  o.admin_key = kAdminKey;
  auto s = std::make_unique<testing::ServerProcess>(o);
  EXPECT_TRUE(s->Start()) << s->error();
  return s;
}

TEST(EdgeLimitsTest, SilentSlowAndIdleConnectionsAreClosedByTheirTimeouts) {
  auto server = StartWithConfig("header_timeout_seconds = 2\nidle_timeout_seconds = 4\n");
  const auto started = SteadyClock::now();
  RawConnection silent(server->port());
  RawConnection slow(server->port());
  ASSERT_TRUE(slow.Send("GET /healthz HTTP/1.1\r\nHost: q\r\n"));  // never ends its header
  RawConnection kept(server->port());
  ASSERT_TRUE(kept.Send("GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"));
  EXPECT_EQ(StatusOf(kept.ReadResponse(kWait)), 200);
  const auto answered = SteadyClock::now();
  // Before the header timeout (2 s) all three are open.
  if (SteadyClock::now() - started < milliseconds(1500)) {
    EXPECT_FALSE(silent.PeerClosed(milliseconds(100)));
    EXPECT_FALSE(slow.PeerClosed(milliseconds(0)));
  }
  EXPECT_FALSE(kept.PeerClosed(milliseconds(0)));
  // Within the header timeout plus a sweep, the silent and the slow one close...
  EXPECT_TRUE(silent.PeerClosed(milliseconds(4000)));
  EXPECT_TRUE(slow.PeerClosed(milliseconds(1000)));
  // ...and the kept-alive one after its idle timeout (4 s from its answer), not before.
  EXPECT_TRUE(kept.PeerClosed(milliseconds(5000)));
  EXPECT_GE(SteadyClock::now() - answered, milliseconds(3500)) << "closed before its idle timeout";
  EXPECT_EQ(server->Stop(), 0);
}

TEST(EdgeLimitsTest, AtTheCapAcceptingWaitsForARequestInProgressToEnd) {
  auto server = StartWithConfig("max_connections = 3\n");
  std::vector<std::unique_ptr<RawConnection>> busy;
  for (int i = 0; i < 3; ++i) {  // every slot has a request in progress
    busy.push_back(std::make_unique<RawConnection>(server->port()));
    ASSERT_TRUE(busy.back()->Send("GET /healthz HTTP/1.1\r\nHost: q\r\n"));
  }
  std::this_thread::sleep_for(milliseconds(200));
  RawConnection late(server->port());  // sits in the backlog
  ASSERT_TRUE(late.Send("GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"));
  EXPECT_EQ(late.ReadResponse(milliseconds(500)), "") << "served past the cap";
  // One finishes and leaves: its slot goes to the waiting connection.
  ASSERT_TRUE(busy[0]->Send("Connection: close\r\n\r\n"));
  EXPECT_EQ(StatusOf(busy[0]->ReadUntilClose(kWait)), 200);
  EXPECT_EQ(StatusOf(late.ReadResponse(kWait)), 200);
  // At the cap with an idle connection, the idle one makes room at once.
  RawConnection newcomer(server->port());
  ASSERT_TRUE(newcomer.Send("GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"));
  EXPECT_EQ(StatusOf(newcomer.ReadResponse(kWait)), 200);
  EXPECT_TRUE(late.PeerClosed(kWait)) << "the longest-idle connection was not the one closed";
  busy.clear();  // so that the drain need not wait for their header timeout
  EXPECT_EQ(server->Stop(), 0);
}

// Finding 2: a transfer coding the server does not implement must not let the
// body run as a second request.
TEST_F(EdgeTest, UnknownTransferCodingsAreRefusedAndTheConnectionCloses) {
  const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n";
  struct Case {
    std::string coding;
    int status;
  };
  for (const Case& c : std::vector<Case>{{"xchunked", 501},
                                         {"identity", 501},
                                         {"gzip, chunked", 501},
                                         {"chunked, identity", 400},
                                         {"chunked, chunked", 400}}) {
    const std::string reply = Exchange(
        "POST /api/v2/quota/consume HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: " + c.coding +
        "\r\n\r\n" + smuggled);
    EXPECT_EQ(StatusOf(reply), c.status) << c.coding << ": " << reply;
    EXPECT_EQ(CountResponses(reply), 1) << c.coding << ": the body ran as a request: " << reply;
    EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  }
  // Transfer-Encoding with Content-Length.
  const std::string both = Exchange(
      "POST /api/v2/quota/consume HTTP/1.1\r\nHost: q\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
      smuggled);
  EXPECT_EQ(StatusOf(both), 400) << both;
  EXPECT_EQ(CountResponses(both), 1) << both;
  // Plain chunked still works.
  RawConnection ok(server_->port());
  ASSERT_TRUE(
      ok.Send("GET /healthz HTTP/1.1\r\nHost: q\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
  EXPECT_EQ(StatusOf(ok.ReadResponse(kWait)), 200);
}

TEST_F(EdgeTest, HostAndCredentialsMustBeUnambiguous) {
  EXPECT_EQ(StatusOf(Exchange("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")), 400);
  EXPECT_EQ(StatusOf(Exchange("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
                              "Connection: close\r\n\r\n")),
            400);
  EXPECT_EQ(StatusOf(Exchange("GET /healthz HTTP/1.0\r\n\r\n")), 200);  // 1.0 needs no Host
  EXPECT_EQ(StatusOf(Exchange("GET /api/v2/usage/current HTTP/1.1\r\nHost: q\r\n"
                              "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n"
                              "Connection: close\r\n\r\n")),
            400);
  EXPECT_EQ(StatusOf(Exchange("GET /api/v2/usage/current HTTP/1.1\r\nHost: q\r\n"
                              "Authorization: Bearer a\r\nX-API-Key: b\r\n"
                              "Connection: close\r\n\r\n")),
            400);
  testing::HttpClient http(server_->port());
  Tenant t = CreateTenant(http, "hosty", "pro");
  // The same key in both fields is not ambiguous.
  const std::string same = Exchange(
      "GET /api/v2/usage/current HTTP/1.1\r\nHost: q\r\n"
      "Authorization: Bearer " +
      t.key + "\r\nX-API-Key: " + t.key + "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(same), 200) << same;
}

TEST_F(EdgeTest, HeadIsServedOnGetRoutesWithoutABody) {
  testing::HttpClient http(server_->port());
  Tenant t = CreateTenant(http, "heady", "pro");
  for (const std::string target : {"/healthz", "/api/v2/usage/current", "/metrics", "/"}) {
    RawConnection c(server_->port());
    ASSERT_TRUE(c.Send("HEAD " + target + " HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer " + t.key +
                       "\r\n\r\nGET /healthz HTTP/1.1\r\nHost: q\r\n\r\n"));
    // Two responses: HEAD's headers (with the GET's Content-Length), then the GET.
    std::string both;
    const auto deadline = SteadyClock::now() + kWait;
    while (CountResponses(both) < 2 && SteadyClock::now() < deadline) {
      both += c.ReadResponse(milliseconds(200));
    }
    ASSERT_EQ(CountResponses(both), 2) << target << ": " << both;
    EXPECT_EQ(StatusOf(both), 200) << target << ": " << both;
    const size_t head_end = both.find("\r\n\r\n") + 4;
    EXPECT_EQ(both.compare(head_end, 7, "HTTP/1."), 0) << "HEAD sent a body: " << both;
    EXPECT_EQ(both.find("Content-Length: 0\r\n"), std::string::npos) << both;
  }
  auto r = http.Send("POST", "/healthz");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET, HEAD");
}

// Finding 5: SIGTERM lets a request that is still being sent finish.
TEST_F(EdgeTest, DrainFinishesARequestStillBeingSent) {
  testing::HttpClient http(server_->port());
  Tenant t = CreateTenant(http, "drainy", "pro");
  const std::string body = R"({"meter":"messages_sent","quantity":7})";
  RawConnection slow(server_->port());
  ASSERT_TRUE(slow.Send("POST /api/v2/quota/consume HTTP/1.1\r\nHost: q\r\nAuthorization: Bearer " +
                        t.key + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                        body.substr(0, 10)));
  RawConnection ready(server_->port());  // /readyz, begun before the signal
  ASSERT_TRUE(ready.Send("GET /readyz HTTP/1.1\r\nHost: q\r\n"));
  RawConnection idle(server_->port());  // sent nothing: closed by the drain
  std::this_thread::sleep_for(milliseconds(200));

  server_->Signal(SIGTERM);
  std::this_thread::sleep_for(milliseconds(500));
  ASSERT_TRUE(slow.Send(body.substr(10)));
  const std::string reply = slow.ReadUntilClose(kWait);
  EXPECT_EQ(StatusOf(reply), 200) << reply;
  EXPECT_NE(reply.find("\"consumed\":7"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  ASSERT_TRUE(ready.Send("\r\n"));
  EXPECT_EQ(StatusOf(ready.ReadUntilClose(kWait)), 503);
  EXPECT_TRUE(idle.PeerClosed(kWait));
  EXPECT_EQ(server_->Wait(), 0);

  server_ = StartServer(dir_);  // the drained request was committed
  testing::HttpClient again(server_->port());
  EXPECT_EQ(UsageField(again, t, "messages_sent"), 7u);
}

// Finding 6: error bodies are valid UTF-8 and quote input only briefly.
TEST_F(EdgeTest, ErrorBodiesAreValidUtf8AndCut) {
  testing::HttpClient http(server_->port());
  Tenant t = CreateTenant(http, "utfy", "pro");
  for (const std::string& target : std::vector<std::string>{
           "/api/v2/sessions/%ff", "/api/v2/sessions/%c0%af", "/api/v2/sessions/a%ed%a0%80b",
           "/nowhere/%ff%fe", "/api/v2/sessions/" + std::string(5000, 'x')}) {
    auto r = http.Get(target, Bearer(t.key));
    EXPECT_GE(r.status, 400) << target;
    // boost::json::parse refuses invalid UTF-8.
    EXPECT_TRUE(r.json().is_object())
        << target << " gave a body that is not valid JSON: " << r.body;
    EXPECT_LT(r.body.size(), 700u) << target;
  }
}

// Finding 9: a parameter must not swallow a reserved word.
TEST_F(EdgeTest, UnknownSubResourcesAreNotFoundNotMethodNotAllowed) {
  testing::HttpClient http(server_->port());
  Tenant t = CreateTenant(http, "routy", "pro");
  // The sub-resources are routes of their own, never message ids.
  EXPECT_EQ(http.Post("/api/v2/messages/bulk", "{}", Bearer(t.key)).status, 400);
  EXPECT_EQ(http.Post("/api/v2/messages/schedule", "{}", Bearer(t.key)).status, 400);
  auto bulk = http.Get("/api/v2/messages/bulk", Bearer(t.key));
  EXPECT_EQ(bulk.status, 405);
  EXPECT_EQ(bulk.header("allow"), "POST");
  auto send = http.Get("/api/v2/messages/send", Bearer(t.key));
  EXPECT_EQ(send.status, 405);
  EXPECT_EQ(send.header("allow"), "POST");
  EXPECT_EQ(http.Get("/api/v2/messages/some-id", Bearer(t.key)).status, 404);
}

}  // namespace
}  // namespace quotum::itest
