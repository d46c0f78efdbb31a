// GET /api/v2/usage/stream against the real binary, on either backend: the
// first event, a consume reaching an open stream, resuming with
// Last-Event-ID, the per-tenant cap, keys only in headers, and a shutdown
// that ends the stream instead of waiting for it.
#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "harness.h"
#include "quotum/testing/raw_connection.h"

namespace quotum::itest {
namespace {

using std::chrono::milliseconds;
using testing::HttpClient;
using testing::RawConnection;

bool Has(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

std::string StreamRequest(const std::string& key, const std::string& last_event_id = "") {
  std::string r = absl::StrCat("GET /api/v2/usage/stream HTTP/1.1\r\nHost: x\r\nX-API-Key: ", key,
                               "\r\nAccept: text/event-stream\r\n");
  if (!last_event_id.empty()) absl::StrAppend(&r, "Last-Event-ID: ", last_event_id, "\r\n");
  return r + "\r\n";
}

/// The id of the last event in `text`.
std::string LastId(const std::string& text) {
  const size_t at = text.rfind("\nid: ");
  return at == std::string::npos ? "" : text.substr(at + 5, 16);
}

class LiveHttpTest : public OneServerSuite<LiveHttpTest> {
 protected:
  /// Opens a stream of `t` and reads up to its first event (or, with an id
  /// that names the current state, its preamble).
  static std::string Open(RawConnection& conn, const Tenant& t, const std::string& id = "") {
    EXPECT_TRUE(conn.Send(StreamRequest(t.key, id)));
    std::string got;
    EXPECT_TRUE(
        conn.ReadUntil(got, id.empty() ? "event: usage" : "retry: 2000", 0, milliseconds(5000)))
        << got;
    return got;
  }
};

TEST_F(LiveHttpTest, AConsumeReachesAnOpenStreamAsOneChangedMeter) {
  auto c = Client();
  Tenant t = CreateTenant(c, "live-consume", "pro");
  RawConnection conn(server_->port());
  std::string got = Open(conn, t);
  EXPECT_TRUE(Has(got, "HTTP/1.1 200")) << got;
  EXPECT_TRUE(Has(got, "Content-Type: text/event-stream")) << got;
  EXPECT_TRUE(Has(got, "Cache-Control: no-store")) << got;
  EXPECT_TRUE(Has(got, "\"full\":true")) << got;
  EXPECT_TRUE(Has(got, "\"messages_sent\":{\"kind\":\"counter\",\"used\":0,\"limit\":10000"))
      << got;
  const size_t before = got.size();
  auto r = c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 7), Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  // The tick is 250 ms; the bound leaves room for slow (sanitised) builds.
  ASSERT_TRUE(conn.ReadUntil(got, "\"messages_sent\":{\"kind\":\"counter\",\"used\":7", before,
                             milliseconds(3000)))
      << got.substr(before);
  const std::string change = got.substr(before);
  EXPECT_TRUE(Has(change, "\"full\":false")) << change;
  EXPECT_TRUE(Has(change, "\"remaining\":9993")) << change;
  EXPECT_FALSE(Has(change, "\"sessions_active\"")) << change;  // unchanged meters stay out
}

TEST_F(LiveHttpTest, ResumingWithLastEventIdSendsWhatChangedSince) {
  auto c = Client();
  Tenant t = CreateTenant(c, "live-resume", "pro");
  std::string id;
  {
    RawConnection conn(server_->port());
    id = LastId(Open(conn, t));
    ASSERT_EQ(id.size(), 16u);
  }
  ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 2), Bearer(t.key)).status,
            200);
  RawConnection again(server_->port());
  ASSERT_TRUE(again.Send(StreamRequest(t.key, id)));
  std::string got;
  ASSERT_TRUE(again.ReadUntil(got, "event: usage", 0, milliseconds(5000))) << got;
  EXPECT_TRUE(Has(got, "\"full\":false")) << got;
  EXPECT_TRUE(Has(got, "\"messages_sent\":{\"kind\":\"counter\",\"used\":2")) << got;
  EXPECT_NE(LastId(got), id);
}

TEST_F(LiveHttpTest, FourStreamsPerTenantAndAClosedOneFreesItsPlace) {
  auto c = Client();
  Tenant t = CreateTenant(c, "live-cap", "pro");
  std::vector<std::unique_ptr<RawConnection>> open;
  for (int i = 0; i < 4; ++i) {
    open.push_back(std::make_unique<RawConnection>(server_->port()));
    Open(*open.back(), t);
  }
  auto refused = c.Get("/api/v2/usage/stream", Bearer(t.key));
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.json().at("code"), "too_many_streams") << refused.body;
  // Another tenant is not held to this tenant's streams.
  Tenant other = CreateTenant(c, "live-cap-other", "pro");
  RawConnection theirs(server_->port());
  Open(theirs, other);
  open.pop_back();  // a client leaves; the server notices the closed socket
  std::string got;
  bool reopened = false;
  for (int i = 0; i < 20 && !reopened; ++i) {
    RawConnection conn(server_->port());
    ASSERT_TRUE(conn.Send(StreamRequest(t.key)));
    got.clear();
    conn.ReadUntil(got, "\r\n\r\n", 0, milliseconds(2000));
    reopened = Has(got, "HTTP/1.1 200");
    if (!reopened) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(reopened) << got;
}

TEST_F(LiveHttpTest, TheKeyIsTakenFromHeadersOnly) {
  auto c = Client();
  Tenant t = CreateTenant(c, "live-keys", "pro");
  EXPECT_EQ(c.Get("/api/v2/usage/stream").status, 401);
  EXPECT_EQ(c.Get("/api/v2/usage/stream?api_key=" + t.key).status, 401);
  EXPECT_EQ(c.Get("/api/v2/usage/stream", {{"X-API-Key", "qk_not_a_key"}}).status, 401);
}

TEST(LiveShutdownTest, StoppingTheServerEndsItsStreams) {
  const std::string dir = testing::MakeTempDir("quotum-live-");
  auto server = StartServer(dir);
  HttpClient c(server->port());
  Tenant t = CreateTenant(c, "live-stop", "pro");
  RawConnection conn(server->port());
  ASSERT_TRUE(conn.Send(StreamRequest(t.key)));
  std::string got;
  ASSERT_TRUE(conn.ReadUntil(got, "event: usage", 0, milliseconds(5000))) << got;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(server->Stop(), 0);
  // The drain grace is 10 s: a stream that held the drain would show here.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(8));
  got += conn.ReadUntilClose(milliseconds(2000));
  EXPECT_TRUE(Has(got, "\r\n0\r\n\r\n")) << got.substr(got.size() > 200 ? got.size() - 200 : 0);
}

}  // namespace
}  // namespace quotum::itest
