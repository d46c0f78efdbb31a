// Micro benchmarks (Google Benchmark): period maths, limiter algorithms, the
// quota decision, the engine's decide and consume paths (hot tenant and 1 M
// tenants, 1 and 2 threads), idempotent replay, and usage/current encoding.
// Run: bench/run-micro.sh
#include <benchmark/benchmark.h>

#include <atomic>
#include <future>
#include <memory>
#include <random>

#include "quotum/config/config.h"
#include "quotum/core/billing_period.h"
#include "quotum/core/quota.h"
#include "quotum/engine/engine.h"
#include "quotum/http/json_output.h"
#include "quotum/http/render.h"
#include "quotum/ratelimit/limiter.h"

namespace quotum {
namespace {

// A store that accepts everything at once: isolates the engine from I/O.
class NullStore final : public engine::Store {
 public:
  absl::Status Load(absl::Time, engine::SnapshotSink&) override { return absl::OkStatus(); }
  absl::Status Commit(const engine::CommitBatch&) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<engine::DailyRow>> Daily(const std::string&, absl::CivilDay,
                                                      absl::CivilDay) override {
    return std::vector<engine::DailyRow>{};
  }
  absl::StatusOr<std::vector<engine::CounterRow>> Periods(const std::string&, absl::Time) override {
    return std::vector<engine::CounterRow>{};
  }
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> Channels(const std::string&,
                                                                         const std::string&,
                                                                         absl::Time,
                                                                         absl::Time) override {
    return std::vector<std::pair<std::string, uint64_t>>{};
  }
  absl::StatusOr<std::optional<engine::MessageRecord>> FindMessage(const std::string&,
                                                                   const std::string&) override {
    return std::nullopt;
  }
  absl::StatusOr<std::vector<engine::EventRecord>> Events(const std::string&, size_t) override {
    return std::vector<engine::EventRecord>{};
  }
  absl::StatusOr<std::vector<std::string>> TenantIds() override {
    return std::vector<std::string>{};
  }
  absl::StatusOr<std::vector<engine::FailOpenCharge>> PendingFailOpen(size_t) override {
    return std::vector<engine::FailOpenCharge>{};
  }
  absl::Status CheckWritable() override { return absl::OkStatus(); }
};

const config::Config& Cfg() {
  static auto cfg = *config::LoadFile(QUOTUM_EXAMPLE_CONFIG);
  return *cfg;
}

// One engine over a NullStore with `tenants` enterprise tenants (no limits,
// general rule raised so only the decision itself is measured).
struct Fixture {
  explicit Fixture(int tenants) {
    engine::EngineOptions o;
    o.catalog = &Cfg().catalog;
    o.default_plan = "enterprise";
    o.rate_rules = ratelimit::RuleSet::Defaults();
    o.rate_rules[ratelimit::Category::kGeneral].limit = 4'000'000'000ULL;
    engine = std::make_unique<engine::Engine>(o, &store, &clock);
    (void)engine->Start();
    principals.reserve(static_cast<size_t>(tenants));
    std::atomic<int> left{tenants};
    std::promise<void> all;
    std::vector<std::string> secrets(static_cast<size_t>(tenants));
    for (int i = 0; i < tenants; ++i) {
      engine->CreateTenant({"t" + std::to_string(i), "", "enterprise", std::nullopt},
                           [&, i](absl::StatusOr<engine::CreatedTenant> r) {
                             secrets[static_cast<size_t>(i)] = r->key.secret;
                             if (--left == 0) all.set_value();
                           });
    }
    all.get_future().wait();
    for (auto& s : secrets) principals.push_back(*engine->Authenticate(s));
  }
  NullStore store;
  SystemClock clock;
  std::unique_ptr<engine::Engine> engine;
  std::vector<engine::Principal> principals;
};

Fixture& Hot() {
  static Fixture f(1);
  return f;
}

Fixture& Million() {
  static Fixture f(1'000'000);
  return f;
}

void BM_PeriodAtMonth(benchmark::State& state) {
  auto iv = *ParseBillingInterval("month", "subscription");
  absl::Time anchor = absl::FromUnixSeconds(1'769'860'800);  // 2026-01-31T12:00:00Z
  absl::Time now = absl::FromUnixSeconds(1'796'724'000);
  for (auto _ : state) {
    benchmark::DoNotOptimize(PeriodAt(anchor, iv, now));
    now += absl::Seconds(1);
  }
}
BENCHMARK(BM_PeriodAtMonth);

void BM_PeriodAt30d(benchmark::State& state) {
  auto iv = *ParseBillingInterval("30d", "subscription");
  absl::Time anchor = absl::FromUnixSeconds(1'769'860'800);
  absl::Time now = absl::FromUnixSeconds(1'796'724'000);
  for (auto _ : state) {
    benchmark::DoNotOptimize(PeriodAt(anchor, iv, now));
    now += absl::Seconds(1);
  }
}
BENCHMARK(BM_PeriodAt30d);

void BM_Limiter(benchmark::State& state) {
  const auto algo = static_cast<ratelimit::Algorithm>(state.range(0));
  ratelimit::Rule rule{algo, 1'000'000, 60'000'000'000};
  ratelimit::State s;
  int64_t now = 1'796'724'000'000'000'000;
  for (auto _ : state) {
    auto r = ratelimit::Decide(rule, s, now, 1);
    s = r.next;
    now += 1000;
    benchmark::DoNotOptimize(r.allowed);
  }
  state.SetLabel(algo == ratelimit::Algorithm::kSlidingWindow ? "sliding_window"
                 : algo == ratelimit::Algorithm::kTokenBucket ? "token_bucket"
                                                              : "fixed_window");
}
BENCHMARK(BM_Limiter)->Arg(0)->Arg(1)->Arg(2);

void BM_DecideQuota(benchmark::State& state) {
  QuotaRequest r{0, 10'000'000'000ULL, 1, false, OnLimit::kReject};
  for (auto _ : state) {
    auto q = DecideQuota(r);
    r.used += q.admitted;
    benchmark::DoNotOptimize(q);
  }
}
BENCHMARK(BM_DecideQuota);

// The in-memory decision: tenant lock, period check, quota maths (a check; no commit).
void BM_EngineDecide(benchmark::State& state) {
  Fixture& f = Hot();
  engine::MeterRequest req;
  req.meter = "messages_sent";
  req.quantity = 1;
  req.dry_run = true;
  req.count_api_call = false;
  uint64_t allowed = 0;
  for (auto _ : state) {
    f.engine->Consume(f.principals[0], req,
                      [&](absl::StatusOr<engine::Decision> d) { allowed += d.ok() && d->allowed; });
  }
  state.counters["decisions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  benchmark::DoNotOptimize(allowed);
}
BENCHMARK(BM_EngineDecide)->Threads(1)->Threads(2)->UseRealTime();

// The full consume: general rule, quota, charge, idempotency-free group commit
// (the NullStore commits instantly). Completions are counted, not awaited.
void BM_EngineConsume(benchmark::State& state) {
  Fixture& f = Hot();
  engine::MeterRequest req;
  req.meter = "messages_sent";
  req.quantity = 1;
  for (auto _ : state) {
    f.engine->Consume(f.principals[0], req,
                      [](absl::StatusOr<engine::Decision> d) { benchmark::DoNotOptimize(d); });
  }
  state.counters["consumes/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EngineConsume)->Threads(1)->Threads(2)->UseRealTime();

// Decisions spread over 1 M tenants: cache misses instead of one hot line.
void BM_EngineDecideMillionTenants(benchmark::State& state) {
  Fixture& f = Million();
  engine::MeterRequest req;
  req.meter = "messages_sent";
  req.quantity = 1;
  req.dry_run = true;
  req.count_api_call = false;
  std::mt19937_64 rng(state.thread_index());
  for (auto _ : state) {
    const auto& who = f.principals[rng() % f.principals.size()];
    f.engine->Consume(who, req,
                      [](absl::StatusOr<engine::Decision> d) { benchmark::DoNotOptimize(d); });
  }
  state.counters["decisions/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EngineDecideMillionTenants)->Threads(1)->Threads(2)->UseRealTime();

// A retry with a known Idempotency-Key: lookup and replay, nothing charged.
void BM_IdempotentReplay(benchmark::State& state) {
  Fixture& f = Hot();
  engine::MeterRequest req;
  req.meter = "messages_sent";
  req.quantity = 1;
  req.idempotency_key = "bench-replay";
  req.operation = "bench";
  std::promise<void> first;
  f.engine->Consume(f.principals[0], req,
                    [&](absl::StatusOr<engine::Decision>) { first.set_value(); });
  first.get_future().wait();
  for (auto _ : state) {
    f.engine->Consume(f.principals[0], req,
                      [](absl::StatusOr<engine::Decision> d) { benchmark::DoNotOptimize(d); });
  }
}
BENCHMARK(BM_IdempotentReplay);

void BM_UsageCurrentJson(benchmark::State& state) {
  Fixture& f = Hot();
  engine::UsageView u = f.engine->CurrentUsage(f.principals[0]);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = http::ToJson(http::UsageJson(Cfg().catalog, u));
    bytes += body.size();
    benchmark::DoNotOptimize(body);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_UsageCurrentJson);

}  // namespace
}  // namespace quotum

int main(int argc, char** argv) {
  // Build the fixtures outside the timed loops; the 1 M-tenant one only when
  // its benchmark is selected (its heap disturbs the others: run it alone).
  bool million = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    if (arg.rfind("--benchmark_filter=", 0) == 0 && arg.find("Million") != std::string_view::npos &&
        arg.find("-Million") == std::string_view::npos) {
      million = true;
    }
  }
  benchmark::Initialize(&argc, argv);
  quotum::Hot();
  if (million) quotum::Million();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
