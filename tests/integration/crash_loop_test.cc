// Crash loop: SIGKILL at random moments under mixed load, twenty times, on one
// data dir. After each restart: the store opens, nothing acknowledged is lost,
// nothing beyond what was in flight appears, no limit is exceeded, and every
// Idempotency-Key replays its first decision.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;
using testing::HttpResponse;

constexpr int kKills = 20;
/// Per worker and round: with kWorkers, the bound on requests between two kills.
constexpr int kRequestsPerWorker = 60;
/// A round's kill comes once this many answers arrived (drawn uniformly).
constexpr int kMinAnswersBeforeKill = 20;
constexpr int kMaxAnswersBeforeKill = 200;
/// messages_sent starts nearly exhausted, so enforcement decides within a few rounds.
constexpr uint64_t kMessageLimit = 1000;
constexpr uint64_t kMessagesBefore = 850;
constexpr uint64_t kSessionLimit = 3;  // pro plan's sessions_active, "sender" included
constexpr std::array<const char*, 2> kMeters = {"ai_tokens", "messages_sent"};

int MeterIndex(std::string_view meter) { return meter == kMeters[0] ? 0 : 1; }

/// One metering request: `quantity` units of `meter` at most.
struct MeterCall {
  std::string target;
  std::string body;
  std::string key;  ///< Idempotency-Key, or empty
  int meter = 0;    ///< index in kMeters
  uint64_t quantity = 0;
};

/// The fields a replay must repeat: status, allowed/consumed/remaining or the refusal.
std::string Signature(const HttpResponse& r) {
  auto j = r.json();
  if (!j.is_object()) return std::to_string(r.status) + " " + r.body;
  const auto& o = j.as_object();
  auto field = [&](const char* name) {
    auto it = o.find(name);
    return it == o.end() ? std::string("-") : boost::json::serialize(it->value());
  };
  if (r.status == 200) {
    return "200 allowed=" + field("allowed") + " consumed=" + field("consumed") +
           " remaining=" + field("remaining");
  }
  return std::to_string(r.status) + " code=" + field("code") + " remaining=" + field("remaining");
}

struct KeyedDecision {
  MeterCall call;
  std::string first;  ///< Signature() of the first answer
};

/// Everything the workers learnt; guarded by `mu` while they run.
struct Ledger {
  std::mutex mu;
  std::array<uint64_t, 2> acked{};    ///< units in answered, admitted requests
  std::array<uint64_t, 2> unknown{};  ///< units of keyless requests lost at a kill
  std::vector<KeyedDecision> keys;    ///< answered keyed requests
  std::vector<MeterCall> lost_keyed;  ///< keyed requests lost at the last kill
  int lost = 0;                       ///< requests lost at kills, all kinds
  int refused = 0;                    ///< 429 quota_exceeded answers
};

enum class Ses { kAbsent, kStarting, kWorking, kStopped };

Ses SesOf(std::string_view status) {
  if (status == "starting") return Ses::kStarting;
  if (status == "working") return Ses::kWorking;
  if (status == "stopped") return Ses::kStopped;
  return Ses::kAbsent;
}

const char* Name(Ses s) {
  switch (s) {
    case Ses::kAbsent:
      return "absent";
    case Ses::kStarting:
      return "starting";
    case Ses::kWorking:
      return "working";
    case Ses::kStopped:
      return "stopped";
  }
  return "?";
}

/// The churned sessions c0..c2 as acknowledged; only the churn worker changes them.
struct SessionModel {
  std::array<Ses, 3> acked{Ses::kAbsent, Ses::kAbsent, Ses::kAbsent};
  std::array<std::optional<Ses>, 3> in_flight;
  int Working() const {
    int n = 1;  // "sender"
    for (Ses s : acked) n += s == Ses::kWorking;
    return n;
  }
};

class CrashLoop {
 public:
  CrashLoop(uint64_t seed, Tenant t) : seed_(seed), t_(std::move(t)) {}

  /// Sends one metering call and books its answer; false once the server is gone.
  /// Only a call sent again after a kill may be answered by a replay.
  bool Meter(HttpClient& c, const MeterCall& call, bool may_replay = false) {
    auto h = Bearer(t_.key);
    if (!call.key.empty()) h["Idempotency-Key"] = call.key;
    HttpResponse r = c.Post(call.target, call.body, h);
    std::lock_guard<std::mutex> l(ledger_.mu);
    if (r.status == 0) {
      ++ledger_.lost;
      if (call.key.empty()) {
        ledger_.unknown[call.meter] += call.quantity;
      } else {
        ledger_.lost_keyed.push_back(call);
      }
      return false;
    }
    answers_.fetch_add(1);
    const auto j = r.json();
    if (!j.is_object() || (r.status != 200 && r.status != 429)) {
      ADD_FAILURE() << call.target << " answered " << r.status << " " << r.body;
      return true;
    }
    const auto& o = j.as_object();
    if (r.status == 200) {
      if (!may_replay) {
        EXPECT_FALSE(o.contains("replayed")) << "a fresh key replayed: " << r.body;
      }
      ledger_.acked[call.meter] += o.at("consumed").to_number<uint64_t>();
    } else {
      EXPECT_EQ(o.at("code"), "quota_exceeded") << r.body;
      ++ledger_.refused;
    }
    if (!call.key.empty()) ledger_.keys.push_back({call, Signature(r)});
    return true;
  }

  /// One step on a churned session; false once the server is gone.
  bool Churn(HttpClient& c, std::mt19937_64& rng) {
    const size_t i = rng() % 3;
    const std::string id = "c" + std::to_string(i);
    const Ses from = sessions_.acked[i];
    Ses to = Ses::kAbsent;
    HttpResponse r;
    const auto h = Bearer(t_.key);
    const std::string path = "/api/v2/sessions/" + id;
    if (from == Ses::kAbsent) {
      to = Ses::kStarting;
      r = c.Post("/api/v2/sessions", R"({"id":")" + id + R"("})", h);
    } else if (from != Ses::kWorking && rng() % 4 != 0) {
      to = Ses::kWorking;
      r = c.Send("PATCH", path, R"({"status":"working"})", h);
    } else if (from == Ses::kWorking && rng() % 3 != 0) {
      to = Ses::kStopped;
      r = c.Send("PATCH", path, R"({"status":"stopped"})", h);
    } else {
      r = c.Send("DELETE", path, "", h);
    }
    if (r.status == 0) {
      sessions_.in_flight[i] = to;
      std::lock_guard<std::mutex> l(ledger_.mu);
      ++ledger_.lost;
      return false;
    }
    answers_.fetch_add(1);
    if (to == Ses::kWorking && sessions_.Working() >= static_cast<int>(kSessionLimit)) {
      EXPECT_EQ(r.status, 429) << id << ": sessions_active over its limit: " << r.body;
      EXPECT_EQ(r.body.find("quota_exceeded") != std::string::npos, true) << r.body;
      std::lock_guard<std::mutex> l(ledger_.mu);
      ++ledger_.refused;
      return true;
    }
    EXPECT_EQ(r.status, from == Ses::kAbsent ? 201 : 200)
        << id << " " << Name(from) << " -> " << Name(to) << ": " << r.body;
    if (r.status / 100 == 2) {
      const std::string want = to == Ses::kAbsent ? "deleted" : Name(to);
      EXPECT_NE(r.body.find("\"status\":\"" + want + "\""), std::string::npos) << r.body;
      sessions_.acked[i] = to;
    }
    return true;
  }

  /// Load from five workers until the kill (or each worker's bound).
  void RunRound(int round, testing::ServerProcess& server) {
    answers_ = 0;
    std::mt19937_64 rng(seed_ + static_cast<uint64_t>(round));
    const int kill_after =
        std::uniform_int_distribution<int>(kMinAnswersBeforeKill, kMaxAnswersBeforeKill)(rng);
    const auto extra_delay = std::chrono::microseconds(rng() % 3000);
    constexpr int kWorkers = 5;
    std::atomic<int> running{kWorkers};
    std::vector<std::thread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&, w] {
        std::mt19937_64 wrng(seed_ * 31 + static_cast<uint64_t>(round * kWorkers + w));
        HttpClient c(server.port());
        for (int n = 0; n < kRequestsPerWorker; ++n) {
          const std::string key = wrng() % 2 == 0 ? ""
                                                  : "k" + std::to_string(round) + "-" +
                                                        std::to_string(w) + "-" + std::to_string(n);
          bool up = true;
          if (w <= 1) {  // unlimited meter: every unit counts
            const uint64_t q = 1 + wrng() % 5;
            up = Meter(c, {"/api/v2/quota/consume", ConsumeBody("ai_tokens", q), key, 0, q});
          } else if (w == 2) {  // the nearly exhausted meter, sometimes partially
            const uint64_t q = 1 + wrng() % 4;
            up = Meter(c, {"/api/v2/quota/consume",
                           ConsumeBody("messages_sent", q, wrng() % 3 == 0), key, 1, q});
          } else if (w == 3) {  // sends through the working session, same meter
            const std::string body = boost::json::serialize(boost::json::object{
                {"session", "sender"}, {"to", "+1555" + std::to_string(n)}, {"text", key}});
            up = Meter(c, {"/api/v2/messages/send", body, key, 1, 1});
          } else {
            up = Churn(c, wrng);
          }
          if (!up) break;
        }
        running.fetch_sub(1);
      });
    }
    while (answers_.load() < kill_after && running.load() > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    std::this_thread::sleep_for(extra_delay);
    server.Kill9();
    for (auto& th : workers) th.join();
  }

  /// acked <= used <= acked + what may have committed unanswered, per meter.
  void CheckUsage(HttpClient& c, int round, bool lost_keyed_resolved) {
    auto r = c.Get("/api/v2/usage/current", Bearer(t_.key));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto u = r.json();
    std::array<uint64_t, 2> in_flight = ledger_.unknown;
    if (!lost_keyed_resolved) {
      for (const auto& call : ledger_.lost_keyed) in_flight[call.meter] += call.quantity;
    }
    for (int m = 0; m < 2; ++m) {
      const uint64_t used = u.at("meters").at(kMeters[m]).at("used").to_number<uint64_t>();
      EXPECT_GE(used, ledger_.acked[m])
          << "round " << round << ": acknowledged " << kMeters[m] << " lost";
      EXPECT_LE(used, ledger_.acked[m] + in_flight[m])
          << "round " << round << ": " << kMeters[m] << " counted units never requested";
      stored_[m] = used;
    }
    EXPECT_LE(u.at("messages_sent").to_number<uint64_t>(), kMessageLimit) << "round " << round;
    EXPECT_LE(u.at("sessions_active").to_number<uint64_t>(), kSessionLimit) << "round " << round;
  }

  /// Each churned session is as acknowledged or as its lost request left it.
  void CheckSessions(HttpClient& c, int round) {
    auto r = c.Get("/api/v2/sessions", Bearer(t_.key));
    ASSERT_EQ(r.status, 200) << r.body;
    std::map<std::string, Ses> seen;
    const auto list = r.json();
    for (const auto& s : list.at("sessions").as_array()) {
      seen[std::string(s.at("id").as_string())] = SesOf(s.at("status").as_string());
    }
    EXPECT_EQ(seen.count("sender") ? Name(seen["sender"]) : "absent", std::string("working"))
        << "round " << round;
    int working = 0;
    for (const auto& [id, s] : seen) working += s == Ses::kWorking;
    size_t present = 1;
    for (size_t i = 0; i < 3; ++i) {
      const std::string id = "c" + std::to_string(i);
      const Ses now = seen.count(id) ? seen[id] : Ses::kAbsent;
      const auto& lost = sessions_.in_flight[i];
      EXPECT_TRUE(now == sessions_.acked[i] || (lost && now == *lost))
          << "round " << round << ": session " << id << " is " << Name(now) << "; acknowledged "
          << Name(sessions_.acked[i]) << ", in flight " << (lost ? Name(*lost) : "nothing");
      sessions_.acked[i] = now;
      sessions_.in_flight[i].reset();
      present += now != Ses::kAbsent;
    }
    EXPECT_EQ(seen.size(), present) << "round " << round << ": " << r.body;
    EXPECT_EQ(UsageField(c, t_, "sessions_active"), static_cast<uint64_t>(working))
        << "round " << round;
  }

  /// Sends the keyed requests lost at the kill again: a replay if they committed,
  /// a first decision if not. Either way their answer is now known.
  void ResolveLostKeys(HttpClient& c) {
    std::vector<MeterCall> lost;
    std::swap(lost, ledger_.lost_keyed);
    for (const auto& call : lost) ASSERT_TRUE(Meter(c, call, true)) << "server gone";
  }

  /// Every key answers as it first did.
  void CheckReplays(HttpClient& c, int round) {
    for (const auto& k : ledger_.keys) {
      auto h = Bearer(t_.key);
      h["Idempotency-Key"] = k.call.key;
      HttpResponse r = c.Post(k.call.target, k.call.body, h);
      EXPECT_EQ(Signature(r), k.first) << "round " << round << ": key " << k.call.key;
      if (r.status == 200) {
        EXPECT_EQ(r.json().at("replayed"), true) << r.body;
      }
      ++replays_;
    }
  }

  Ledger& ledger() { return ledger_; }
  int replays() const { return replays_; }
  /// Units per meter at the last check.
  const std::array<uint64_t, 2>& stored() const { return stored_; }

 private:
  const uint64_t seed_;
  const Tenant t_;
  Ledger ledger_;
  SessionModel sessions_;
  std::atomic<int> answers_{0};
  int replays_ = 0;
  std::array<uint64_t, 2> stored_{};
};

uint64_t SeedFromEnv() {
  if (const char* s = std::getenv("QUOTUM_CRASH_SEED"); s && *s)
    return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

TEST(CrashLoop, TwentyKillsLoseNothingAcknowledgedAndKeepEveryDecision) {
  const uint64_t seed = SeedFromEnv();
  std::printf("crash loop: seed %llu (rerun with QUOTUM_CRASH_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  const auto started = std::chrono::steady_clock::now();
  const std::string dir = testing::MakeTempDir("quotum-crash-");
  auto server = StartServer(dir);
  ASSERT_GT(server->port(), 0);
  Tenant t;
  {
    HttpClient c(server->port());
    t = CreateTenant(c, "crash", "pro");
    SetKeyLimits(c, t, 1000000000);  // the quotas, not the short-window rules, are under test
    auto r = c.Send("PUT", "/admin/tenants/crash/limits",
                    boost::json::serialize(boost::json::object{{"messages_sent", kMessageLimit}}),
                    Admin());
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", kMessagesBefore),
                     Bearer(t.key))
                  .status,
              200);
    StartSession(c, t, "sender");
  }
  CrashLoop loop(seed, t);
  loop.ledger().acked[MeterIndex("messages_sent")] = kMessagesBefore;

  int kills = 0;
  for (int round = 1; round <= kKills; ++round) {
    loop.RunRound(round, *server);
    ++kills;
    server = StartServer(dir);
    ASSERT_GT(server->port(), 0) << "round " << round << ": the store did not open";
    HttpClient c(server->port());
    auto ready = c.Get("/readyz");
    ASSERT_EQ(ready.status, 200) << "round " << round << ": " << ready.body;
    loop.CheckUsage(c, round, false);
    loop.CheckSessions(c, round);
    loop.ResolveLostKeys(c);
    loop.CheckUsage(c, round, true);
    loop.CheckReplays(c, round);
    if (::testing::Test::HasFailure()) {
      std::printf("crash loop: stopped at round %d (seed %llu)\n", round,
                  static_cast<unsigned long long>(seed));
      break;
    }
  }
  EXPECT_EQ(server->Stop(), 0);

  const Ledger& l = loop.ledger();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf(
      "crash loop: %d kills; acknowledged %llu ai_tokens, %llu messages_sent (limit %llu); "
      "stored %llu and %llu; %d requests in flight at kills (%llu + %llu units never answered); "
      "%zu keys, %d replays checked; %d refused (429); %.1f s\n",
      kills, static_cast<unsigned long long>(l.acked[0]),
      static_cast<unsigned long long>(l.acked[1]), static_cast<unsigned long long>(kMessageLimit),
      static_cast<unsigned long long>(loop.stored()[0]),
      static_cast<unsigned long long>(loop.stored()[1]), l.lost,
      static_cast<unsigned long long>(l.unknown[0]), static_cast<unsigned long long>(l.unknown[1]),
      l.keys.size(), loop.replays(), l.refused, seconds);
  EXPECT_GT(l.refused, 0) << "enforcement never decided anything";
  EXPECT_GT(l.lost, 0) << "no kill ever caught a request in flight";
}

}  // namespace
}  // namespace quotum::itest
