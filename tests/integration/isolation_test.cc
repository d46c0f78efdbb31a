// Isolation: one table of every route (checked against `quotum routes` both
// ways) and, for each, who is refused and what another tenant can learn.
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_replace.h"
#include "harness.h"
#include "quotum/testing/raw_connection.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;
using testing::HttpResponse;
using Vars = std::map<std::string, std::string>;

struct Row {
  const char* method;
  const char* pattern;  ///< as the router has it
  const char* access;   ///< as `quotum routes` prints it
  /// What is sent: a valid request. `<name>` stands for one of tenant A's
  /// resources (see World::AVars) or, for comparison, an id nobody has.
  const char* target;
  const char* body;
  /// Tenant B naming A's resources gets this status, and the same answer as
  /// for ids nobody has; 0 when the row names none.
  int cross_status;
};

// clang-format off
const Row kRoutes[] = {
    {"GET", "/healthz", "public", "/healthz", "", 0},
    {"GET", "/readyz", "public", "/readyz", "", 0},
    {"GET", "/metrics", "public", "/metrics", "", 0},
    {"GET", "/", "public", "/", "", 0},
    {"GET", "/assets/{file}", "public", "/assets/<asset>", "", 0},
    {"GET", "/openapi.yaml", "public", "/openapi.yaml", "", 0},

    {"POST", "/admin/tenants", "admin", "/admin/tenants", R"({"id":"iso-new","plan":"starter"})", 0},
    {"GET", "/admin/tenants", "admin", "/admin/tenants", "", 0},
    {"GET", "/admin/tenants/{id}", "admin", "/admin/tenants/<tenant>", "", 0},
    {"GET", "/admin/risk", "admin", "/admin/risk?limit=5", "", 0},
    {"POST", "/admin/tenants/{id}/keys", "admin", "/admin/tenants/<tenant>/keys", "", 0},
    {"PUT", "/admin/tenants/{id}/limits", "admin", "/admin/tenants/<tenant>/limits",
     R"({"chatbot_sessions":5000})", 0},
    {"DELETE", "/admin/api-keys/{key_id}", "admin", "/admin/api-keys/<doomed-key>", "", 0},
    {"PUT", "/admin/api-keys/{key_id}/rate-limits", "admin", "/admin/api-keys/<key>/rate-limits",
     R"({"general":400})", 0},
    {"GET", "/admin/api-keys/{key_id}/rate-limits", "admin", "/admin/api-keys/<key>/rate-limits",
     "", 0},
    {"POST", "/admin/tenants/{id}/plan", "admin", "/admin/tenants/<tenant>/plan",
     R"({"plan":"enterprise"})", 0},

    {"POST", "/api/v2/quota/check", "tenant_decides", "/api/v2/quota/check",
     R"({"meter":"messages_sent","quantity":1,"session":"<ses>"})", 404},
    {"POST", "/api/v2/quota/consume", "tenant_decides", "/api/v2/quota/consume",
     R"({"meter":"messages_sent","quantity":1,"session":"<ses>"})", 404},
    {"POST", "/api/v2/quota/reserve", "tenant_decides", "/api/v2/quota/reserve",
     R"({"meter":"ai_tokens","quantity":10})", 0},
    {"POST", "/api/v2/quota/commit", "tenant_decides", "/api/v2/quota/commit",
     R"({"reservation_id":"<rsv>","quantity":1})", 404},
    {"POST", "/api/v2/quota/release", "tenant_decides", "/api/v2/quota/release",
     R"({"reservation_id":"<rsv>"})", 404},
    {"POST", "/api/v2/events", "tenant", "/api/v2/events",
     R"({"events":[{"meter":"messages_sent","quantity":1,"session":"<ses>"}]})", 422},
    {"POST", "/api/v2/messages/send", "tenant_decides", "/api/v2/messages/send",
     R"({"session":"<ses>","to":"+15550100","text":"hello"})", 404},
    {"POST", "/api/v2/messages/received", "tenant_decides", "/api/v2/messages/received",
     R"({"channel":"telegram"})", 0},
    {"GET", "/api/v2/messages/{id}", "tenant", "/api/v2/messages/<msg>", "", 404},
    {"DELETE", "/api/v2/messages/{id}", "tenant", "/api/v2/messages/<msg>", "", 404},
    {"GET", "/api/v2/messages", "tenant", "/api/v2/messages", "", 0},
    {"POST", "/api/v2/messages/schedule", "tenant", "/api/v2/messages/schedule",
     R"({"session":"<ses>","to":"+15550100","send_at":"<send-at>"})", 404},
    {"POST", "/api/v2/messages/bulk", "tenant", "/api/v2/messages/bulk",
     R"({"session":"<ses>","recipients":["+15550100"],"text":"hello"})", 404},
    {"POST", "/api/v2/chatbot/trigger", "tenant_decides", "/api/v2/chatbot/trigger", "{}", 0},

    {"GET", "/api/v2/usage/current", "tenant", "/api/v2/usage/current", "", 0},
    {"GET", "/api/v2/usage/daily", "tenant", "/api/v2/usage/daily?days=3", "", 0},
    {"GET", "/api/v2/usage/history", "tenant", "/api/v2/usage/history?months=2", "", 0},
    {"GET", "/api/v2/usage/channels", "tenant", "/api/v2/usage/channels?meter=messages_sent", "",
     0},
    {"GET", "/api/v2/usage/hourly", "tenant", "/api/v2/usage/hourly", "", 0},
    {"GET", "/api/v2/usage/export", "tenant", "/api/v2/usage/export?format=csv&range=30d", "", 0},
    {"GET", "/api/v2/usage/stream", "tenant", "/api/v2/usage/stream", "", 0},
    {"GET", "/api/v2/plans", "tenant", "/api/v2/plans", "", 0},
    {"GET", "/api/v2/events", "tenant", "/api/v2/events", "", 0},
    {"GET", "/api/v2/alerts", "tenant", "/api/v2/alerts", "", 0},
    {"POST", "/api/v2/webhooks", "tenant", "/api/v2/webhooks",
     R"({"url":"http://127.0.0.1:9/iso","events":["*"]})", 0},
    {"GET", "/api/v2/webhooks", "tenant", "/api/v2/webhooks", "", 0},
    {"GET", "/api/v2/webhooks/{id}/deliveries", "tenant", "/api/v2/webhooks/<hook>/deliveries", "",
     404},
    {"DELETE", "/api/v2/webhooks/{id}", "tenant", "/api/v2/webhooks/<hook>", "", 404},
    {"POST", "/admin/outbox/{id}/retry", "admin", "/admin/outbox/<delivery>/retry", "", 0},
    {"GET", "/admin/reconcile", "admin", "/admin/reconcile", "", 0},
    {"POST", "/admin/reconcile", "admin", "/admin/reconcile", "", 0},
    // B's own subscription: a downgrade is scheduled, then cancelled.
    {"GET", "/api/v2/subscription", "tenant", "/api/v2/subscription", "", 0},
    {"POST", "/api/v2/subscription/preview", "tenant", "/api/v2/subscription/preview",
     R"({"plan":"pro"})", 0},
    {"POST", "/api/v2/subscription/change", "tenant", "/api/v2/subscription/change",
     R"({"plan":"pro"})", 0},
    {"DELETE", "/api/v2/subscription/pending", "tenant", "/api/v2/subscription/pending", "", 0},
    {"POST", "/api/v2/addons", "tenant", "/api/v2/addons",
     R"({"meter":"chatbot_sessions","quantity":1000})", 0},
    {"GET", "/api/v2/addons", "tenant", "/api/v2/addons", "", 0},
    {"DELETE", "/api/v2/addons/{id}", "tenant", "/api/v2/addons/<addon>", "", 404},
    {"POST", "/api/v2/topups", "tenant", "/api/v2/topups",
     R"({"meter":"credits","quantity":5000})", 0},
    {"GET", "/api/v2/topups", "tenant", "/api/v2/topups", "", 0},

    // B creating a session or group under an id A uses is B's own: 201, and A's stays A's.
    {"POST", "/api/v2/sessions", "tenant_decides", "/api/v2/sessions", R"({"id":"<dup-ses>"})",
     201},
    {"GET", "/api/v2/sessions", "tenant", "/api/v2/sessions", "", 0},
    {"GET", "/api/v2/sessions/{id}", "tenant", "/api/v2/sessions/<ses>", "", 404},
    {"PATCH", "/api/v2/sessions/{id}", "tenant_decides", "/api/v2/sessions/<ses>",
     R"({"status":"stopped"})", 404},
    {"DELETE", "/api/v2/sessions/{id}", "tenant_decides", "/api/v2/sessions/<ses>", "", 404},
    {"GET", "/api/v2/sessions/{id}/qr", "tenant_decides", "/api/v2/sessions/<ses>/qr", "", 404},
    {"POST", "/api/v2/sessions/{id}/heartbeat", "tenant_decides",
     "/api/v2/sessions/<ses>/heartbeat", "", 404},
    {"POST", "/api/v2/groups", "tenant_decides", "/api/v2/groups", R"({"id":"<dup-grp>"})", 201},
    {"GET", "/api/v2/groups", "tenant", "/api/v2/groups", "", 0},
    {"DELETE", "/api/v2/groups/{id}", "tenant_decides", "/api/v2/groups/<grp>", "", 404},
    {"PUT", "/api/v2/subscribers/count", "tenant_decides", "/api/v2/subscribers/count",
     R"({"count":1})", 0},
};
// clang-format on

std::string Fill(const std::string& s, const Vars& vars) { return absl::StrReplaceAll(s, vars); }

std::string Line(const Row& r) { return std::string(r.method) + " " + r.pattern + " " + r.access; }

bool IsTenant(const Row& r) { return std::string_view(r.access).starts_with("tenant"); }
bool IsAdmin(const Row& r) { return std::string_view(r.access) == "admin"; }

std::string CodeOf(const HttpResponse& r) {
  auto j = r.json();
  if (!j.is_object() || !j.as_object().contains("code")) return "";
  return std::string(j.at("code").as_string());
}

/// One server, two tenants; A owns a working session, a second session, two
/// groups and a message. B owns nothing at first.
struct World {
  std::string dir = testing::MakeTempDir("quotum-iso-");
  std::string log = dir + "/server.log";
  std::unique_ptr<testing::ServerProcess> server = StartServer(dir + "/data", {}, log);
  HttpClient admin{server->port()};
  Tenant a, b;
  std::string message_id;
  /// A valid send_at (within 366 days) for the schedule row.
  std::string send_at = FormatRfc3339(absl::Now() + absl::Hours(24));
  std::string addon_id;       ///< A's chatbot_sessions pack
  std::string reservation;    ///< A's hold of ai_tokens
  std::string hook_id;        ///< A's webhook
  std::string delivery_id;    ///< a delivery to it
  std::string asset;          ///< a file the dashboard page loads, e.g. "app-<hash>.js"
  std::string spare_key_id;   ///< a second key of A, for the admin key routes
  std::string doomed_key_id;  ///< a third, revoked by the admin route's own row
  std::vector<std::string> keys = {kAdminKey};  ///< every secret the server has seen
  int fresh = 0;

  World() {
    a = CreateTenant(admin, "iso-a", "business");
    b = CreateTenant(admin, "iso-b", "business");
    keys.push_back(a.key);
    keys.push_back(b.key);
    StartSession(admin, a, "alpha-ses");
    auto r = admin.Post("/api/v2/sessions", R"({"id":"dup-ses","phone":"+1999"})", Bearer(a.key));
    EXPECT_EQ(r.status, 201) << r.body;
    for (const char* g : {"alpha-grp", "dup-grp"}) {
      r = admin.Post("/api/v2/groups", std::string(R"({"id":")") + g + R"("})", Bearer(a.key));
      EXPECT_EQ(r.status, 201) << r.body;
    }
    r = admin.Post("/api/v2/messages/send", R"({"session":"alpha-ses","to":"+15550199"})",
                   Bearer(a.key));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status == 200) message_id = std::string(r.json().at("message_id").as_string());
    r = admin.Post("/api/v2/webhooks", R"({"url":"http://127.0.0.1:9/a","events":["*"]})",
                   Bearer(a.key));
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status == 201) hook_id = std::string(r.json().at("id").as_string());
    r = admin.Post("/api/v2/addons", R"({"meter":"chatbot_sessions","quantity":1000})",
                   Bearer(a.key));
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status == 201) addon_id = std::string(r.json().at("id").as_string());
    r = admin.Post("/api/v2/quota/reserve", R"({"meter":"ai_tokens","quantity":100,"ttl_s":3600})",
                   Bearer(a.key));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status == 200) reservation = std::string(r.json().at("reservation_id").as_string());
    delivery_id = AwaitDelivery();
    spare_key_id = MintKey().second;
    doomed_key_id = MintKey().second;
    const std::string page = admin.Get("/").body;
    const size_t at = page.find("/assets/");
    if (at != std::string::npos) asset = page.substr(at + 8, page.find('"', at) - at - 8);
  }

  /// The id of a delivery to A's webhook (the add-on's event makes one).
  std::string AwaitDelivery() {
    HttpResponse r =
        GetEventually(admin, "/api/v2/webhooks/" + hook_id + "/deliveries", Bearer(a.key),
                      [](const HttpResponse& r) {
                        return r.status == 200 && !r.json().at("deliveries").as_array().empty();
                      });
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200 || r.json().at("deliveries").as_array().empty()) return "";
    return std::string(r.json().at("deliveries").as_array()[0].at("id").as_string());
  }

  /// A new key of A: {secret, key_id}.
  std::pair<std::string, std::string> MintKey() {
    auto r = admin.Post("/admin/tenants/iso-a/keys", "", Admin());
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return {};
    std::string secret(r.json().at("api_key").as_string());
    keys.push_back(secret);
    return {secret, std::string(r.json().at("key_id").as_string())};
  }

  Vars AVars() const {
    return {{"<ses>", "alpha-ses"},  {"<dup-ses>", "dup-ses"},
            {"<grp>", "alpha-grp"},  {"<dup-grp>", "dup-grp"},
            {"<msg>", message_id},   {"<tenant>", "iso-a"},
            {"<key>", spare_key_id}, {"<doomed-key>", doomed_key_id},
            {"<asset>", asset},      {"<addon>", addon_id},
            {"<hook>", hook_id},     {"<delivery>", delivery_id},
            {"<rsv>", reservation},  {"<send-at>", send_at}};
  }
  /// Ids nobody has, never used before.
  Vars FreshVars() {
    const std::string n = std::to_string(++fresh);
    return {{"<ses>", "zz-ses-" + n},
            {"<dup-ses>", "zz-dup-ses-" + n},
            {"<grp>", "zz-grp-" + n},
            {"<dup-grp>", "zz-dup-grp-" + n},
            {"<msg>", "msg_zz" + n},
            {"<addon>", "addon_zz" + n},
            {"<hook>", "wh_zz" + n},
            {"<delivery>", "dlv_zz" + n},
            {"<rsv>", "rsv_" + std::string(24 - n.size(), '0') + n + "_ai_tokens"},
            {"<send-at>", send_at}};  // not an id: the same for A and nobody
  }
  /// What B must never see of A.
  std::vector<std::string> ASecrets() const {
    return {"iso-a",      "alpha-ses", "alpha-grp", message_id,  a.key_id,
            spare_key_id, addon_id,    hook_id,     delivery_id, reservation};
  }
};

/// A GET of the usage stream on its own connection: a 200 never ends, so it
/// is read up to its first event; any other answer is read whole.
HttpResponse GetStream(int port, const std::string& target,
                       const std::map<std::string, std::string>& headers) {
  testing::RawConnection conn(port);
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: x\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  EXPECT_TRUE(conn.Send(request + "\r\n"));
  std::string got;
  EXPECT_TRUE(conn.ReadUntil(got, "\r\n\r\n", 0, std::chrono::seconds(5))) << got;
  HttpResponse r;
  r.status = testing::StatusOf(got);
  const size_t head = got.find("\r\n\r\n") + 4;
  // A refusal is one JSON object; a stream's first event ends with a blank line.
  conn.ReadUntil(got, r.status == 200 ? "event: usage" : "}", head, std::chrono::seconds(5));
  if (r.status == 200)
    conn.ReadUntil(got, "\n\n", got.find("event: usage"), std::chrono::seconds(5));
  r.body = got.substr(std::min(head, got.size()));
  return r;
}

/// Sends `row` with `vars` and `key` (Bearer on tenant rows, X-API-Key otherwise);
/// the answer never repeats the key.
HttpResponse Send(HttpClient& c, const Row& row, const Vars& vars, const std::string& key) {
  std::map<std::string, std::string> h;
  if (!key.empty())
    h = IsTenant(row) ? Bearer(key) : std::map<std::string, std::string>{{"X-API-Key", key}};
  HttpResponse r = std::string_view(row.pattern) == "/api/v2/usage/stream"
                       ? GetStream(c.port(), Fill(row.target, vars), h)
                       : c.Send(row.method, Fill(row.target, vars), Fill(row.body, vars), h);
  if (!key.empty()) {
    EXPECT_EQ(r.body.find(key), std::string::npos) << Line(row) << " echoed its key: " << r.body;
  }
  return r;
}

std::set<std::string> RouterRoutes() {
  std::set<std::string> out;
  FILE* p = popen(QUOTUM_BINARY " routes", "r");
  if (!p) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) out.insert(line);
  }
  EXPECT_EQ(pclose(p), 0) << "quotum routes failed";
  return out;
}

TEST(Isolation, TheTableHasARowForEveryRouteAndARouteForEveryRow) {
  const std::set<std::string> router = RouterRoutes();
  ASSERT_FALSE(router.empty());
  std::set<std::string> table;
  for (const Row& row : kRoutes) {
    EXPECT_TRUE(table.insert(Line(row)).second) << "row twice: " << Line(row);
  }
  for (const auto& r : router) EXPECT_TRUE(table.count(r)) << "route missing from the table: " << r;
  for (const auto& r : table) EXPECT_TRUE(router.count(r)) << "row with no route: " << r;
}

const std::string kUnknownKey = "qk_00000000000000000000000000000000";
const std::string kWrongAdminKey = "not-the-admin-key";

// An admin row: a tenant's key is 403, a key nobody has is 401.
void CheckAdminRow(World& w, HttpClient& c, const Row& row, const Vars& a_vars) {
  HttpResponse r = Send(c, row, a_vars, w.a.key);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(CodeOf(r), "forbidden") << r.body;
  r = Send(c, row, a_vars, kWrongAdminKey);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(CodeOf(r), "unauthorized") << r.body;
}

// Tenant B: A's ids answer exactly as ids nobody has; B's own answers show nothing of A.
void CheckCrossTenant(World& w, HttpClient& c, const Row& row, const Vars& a_vars) {
  if (row.cross_status == 0) {
    HttpResponse r = Send(c, row, a_vars, w.b.key);
    EXPECT_EQ(r.status / 100, 2) << r.body;
    for (const auto& s : w.ASecrets()) {
      EXPECT_EQ(r.body.find(s), std::string::npos) << "B sees A's " << s << ": " << r.body;
    }
    return;
  }
  Vars fresh = w.FreshVars();
  HttpResponse theirs = Send(c, row, a_vars, w.b.key);
  HttpResponse missing = Send(c, row, fresh, w.b.key);
  EXPECT_EQ(theirs.status, row.cross_status) << theirs.body;
  EXPECT_EQ(missing.status, row.cross_status) << missing.body;
  if (theirs.status == 404) {
    EXPECT_NE(CodeOf(theirs), "not_found") << "no route matched: " << theirs.body;
  }
  if (row.cross_status == 201) return;  // 201 bodies carry timestamps
  std::string as_if_theirs = missing.body;
  for (const auto& [token, id] : fresh) {
    as_if_theirs = absl::StrReplaceAll(as_if_theirs, {{id, a_vars.at(token)}});
  }
  EXPECT_EQ(theirs.body, as_if_theirs) << "another tenant's id answers differently";
}

// A key revoked between two requests of one keep-alive connection answers as an unknown one.
void CheckRevokedKey(World& w, const Row& row, const Vars& a_vars,
                     const std::string& unknown_body) {
  auto [secret, key_id] = w.MintKey();
  HttpClient kept(w.server->port());
  ASSERT_EQ(kept.Get("/api/v2/plans", Bearer(secret)).status, 200);
  ASSERT_EQ(w.admin.Send("DELETE", "/admin/api-keys/" + key_id, "", Admin()).status, 200);
  HttpResponse r = Send(kept, row, a_vars, secret);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.body, unknown_body) << "a revoked key answers unlike an unknown one";
  EXPECT_EQ(kept.connections(), 1) << "the revoked key was not tried on the same connection";
}

// Nothing B did reached A, and an Idempotency-Key belongs to its tenant.
void ExpectAUntouched(World& w, uint64_t a_sent_before) {
  auto r = w.admin.Get("/api/v2/sessions/alpha-ses", Bearer(w.a.key));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("status":"working")"), std::string::npos) << r.body;
  r = w.admin.Get("/api/v2/sessions/dup-ses", Bearer(w.a.key));
  EXPECT_NE(r.body.find(R"("phone":"+1999")"), std::string::npos) << r.body;
  r = w.admin.Get("/api/v2/groups", Bearer(w.a.key));
  EXPECT_NE(r.body.find(R"("id":"alpha-grp")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("id":"dup-grp")"), std::string::npos) << r.body;
  EXPECT_EQ(w.admin.Get("/api/v2/messages/" + w.message_id, Bearer(w.a.key)).status, 200);
  EXPECT_EQ(UsageField(w.admin, w.a, "messages_sent"), a_sent_before);

  auto ha = Bearer(w.a.key), hb = Bearer(w.b.key);
  ha["Idempotency-Key"] = hb["Idempotency-Key"] = "shared-key";
  r = w.admin.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 3), ha);
  ASSERT_EQ(r.status, 200) << r.body;
  r = w.admin.Post("/api/v2/quota/consume", ConsumeBody("ai_tokens", 5), hb);
  EXPECT_EQ(r.status, 200) << "B's request was tied to A's key: " << r.body;
  EXPECT_FALSE(r.json().as_object().contains("replayed")) << r.body;
}

// Stops the server; no key it ever saw is in /metrics or its output.
void ExpectNoKeyInMetricsOrLogs(World& w) {
  auto r = w.admin.Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(w.server->Stop(), 0);
  std::stringstream log;
  log << std::ifstream(w.log).rdbuf();
  ASSERT_NE(log.str().find("listening on"), std::string::npos) << "no log captured";
  for (const auto& key : w.keys) {
    EXPECT_EQ(r.body.find(key), std::string::npos) << "/metrics shows key " << key;
    EXPECT_EQ(log.str().find(key), std::string::npos) << "the log shows key " << key << ":\n"
                                                      << log.str();
  }
}

TEST(Isolation, EveryRouteRefusesWhomItMustAndLeaksNothingAcrossTenants) {
  World w;
  ASSERT_FALSE(w.message_id.empty());
  ASSERT_FALSE(w.asset.empty()) << "GET / names no /assets/ file";
  const Vars a_vars = w.AVars();
  w.keys.push_back(kUnknownKey);
  w.keys.push_back(kWrongAdminKey);
  const uint64_t a_sent_before = UsageField(w.admin, w.a, "messages_sent");

  for (const Row& row : kRoutes) {
    SCOPED_TRACE(Line(row));
    HttpClient c(w.server->port());
    HttpResponse r = Send(c, row, a_vars, "");  // no key
    if (!IsTenant(row) && !IsAdmin(row)) {
      EXPECT_EQ(r.status, 200) << r.body;
      continue;
    }
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_EQ(CodeOf(r), "unauthorized") << r.body;
    if (IsAdmin(row)) {
      CheckAdminRow(w, c, row, a_vars);
      continue;
    }
    const HttpResponse unknown = Send(c, row, a_vars, kUnknownKey);
    EXPECT_EQ(unknown.status, 401) << unknown.body;
    CheckCrossTenant(w, c, row, a_vars);
    CheckRevokedKey(w, row, a_vars, unknown.body);
  }
  ExpectAUntouched(w, a_sent_before);

  // The table's admin requests are valid (so the refusals above were about the key).
  for (const Row& row : kRoutes) {
    if (!IsAdmin(row)) continue;
    HttpResponse r = Send(w.admin, row, a_vars, kAdminKey);
    EXPECT_EQ(r.status / 100, 2) << Line(row) << ": " << r.body;
    if (r.status == 201 && r.json().as_object().contains("api_key")) {
      w.keys.emplace_back(r.json().at("api_key").as_string());
    }
  }
  // A key in a URL is no more recorded than one in a header.
  EXPECT_EQ(w.admin.Get("/api/v2/" + w.b.key).status, 404);
  ExpectNoKeyInMetricsOrLogs(w);
}

}  // namespace
}  // namespace quotum::itest
