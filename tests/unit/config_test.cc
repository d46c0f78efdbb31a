#include "quotum/config/config.h"

#include "gtest/gtest.h"

namespace quotum::config {
namespace {

std::string Error(std::string_view toml) {
  auto r = LoadString(toml, "test.toml");
  return r.ok() ? "" : std::string(r.status().message());
}

constexpr char kMinimal[] = R"(
[plans.basic]
price_cents = 100
[plans.basic.limits]
messages_sent = 10
)";

TEST(Config, ExampleCarriesTheSpecCatalog) {
  auto cfg = LoadFile(QUOTUM_EXAMPLE_CONFIG);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Catalog& cat = (*cfg)->catalog;
  auto sent = *cat.FindMeter("messages_sent");
  auto sessions = *cat.FindMeter("sessions_active");
  auto groups = *cat.FindMeter("groups_active");
  auto bot = *cat.FindMeter("chatbot_sessions");
  struct Row {
    const char* plan;
    int64_t price;
    std::optional<uint64_t> sent, sessions, groups, bot;
    const char* profile;
  };
  const Row rows[] = {
      {"starter", 0, 1000, 1, 5, 1000, "trial"},
      {"pro", 2900, 10000, 3, 20, 2000, "standard"},
      {"business", 9900, 50000, 10, 100, 5000, "premium"},
      {"enterprise", -1, std::nullopt, std::nullopt, std::nullopt, std::nullopt, "premium"},
  };
  for (const Row& r : rows) {
    const Plan* p = cat.FindPlan(r.plan);
    ASSERT_NE(p, nullptr) << r.plan;
    EXPECT_EQ(p->price_cents, r.price) << r.plan;
    EXPECT_EQ(p->limits[sent], r.sent) << r.plan;
    EXPECT_EQ(p->limits[sessions], r.sessions) << r.plan;
    EXPECT_EQ(p->limits[groups], r.groups) << r.plan;
    EXPECT_EQ(p->limits[bot], r.bot) << r.plan;
    EXPECT_EQ(p->rate_limit_profile, r.profile);
    EXPECT_TRUE(p->warmup.empty()) << "warm-up is opt-in and off in the demo catalog";
    EXPECT_EQ(p->alert_thresholds, (std::vector<int>{80, 90, 100}));
    // Business shows XpressBot's 50 / 80 scheme; the others the default 70 / 90.
    const bool xpressbot = std::string(r.plan) == "business";
    EXPECT_EQ(p->bands.yellow, xpressbot ? 50.0 : 70.0) << r.plan;
    EXPECT_EQ(p->bands.red, xpressbot ? 80.0 : 90.0) << r.plan;
    EXPECT_EQ(BandName(BandFor(60.0, p->bands)), xpressbot ? "yellow" : "green") << r.plan;
  }
  ASSERT_EQ(cat.addons.size(), 16u);
  EXPECT_EQ(cat.addons.front().units, 1000u);
  EXPECT_EQ(cat.addons.front().price_cents, 3000);
  EXPECT_EQ(cat.addons[4].units, 6000u);
  EXPECT_EQ(cat.addons[4].price_cents, 17000);
  EXPECT_EQ(cat.addons.back().units, 200000u);
  EXPECT_EQ(cat.addons.back().price_cents, 263000);
  const RateLimitProfile* trial = cat.FindProfile("trial");
  ASSERT_NE(trial, nullptr);
  EXPECT_EQ(trial->general, 50u);
  EXPECT_EQ(trial->messages, 10u);
  EXPECT_EQ(trial->sessions, 2u);
  EXPECT_EQ(cat.channels,
            (std::vector<std::string>{"whatsapp", "telegram", "messenger", "webchat"}));
  EXPECT_EQ((*cfg)->durability, Durability::kProcess);
}

TEST(Config, MetersCanBeMarkedAsCountedByTheServer) {
  auto cfg = LoadString(std::string(kMinimal) + R"(
[meters.voice_minutes]
kind = "counter"
reported_by = "server"
[meters.leads_detected]
reported_by = "server"
)",
                        "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Catalog& cat = (*cfg)->catalog;
  EXPECT_TRUE(cat.meters[*cat.FindMeter("voice_minutes")].reported_by_server);
  EXPECT_TRUE(cat.meters[*cat.FindMeter("leads_detected")].reported_by_server);
  EXPECT_TRUE(cat.meters[*cat.FindMeter("api_calls")].reported_by_server);
  EXPECT_FALSE(cat.meters[*cat.FindMeter("messages_sent")].reported_by_server);
  EXPECT_NE(Error(std::string(kMinimal) + "[meters.api_calls]\nreported_by = \"client\"\n"), "");
  EXPECT_NE(Error(std::string(kMinimal) + "[meters.x]\nreported_by = \"nobody\"\n"), "");
}

TEST(Config, ServerDefencesHaveDefaultsAndBounds) {
  auto cfg = LoadString(kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->max_connections, 0);  // derived from the open-file limit
  EXPECT_EQ((*cfg)->idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ((*cfg)->header_timeout, std::chrono::seconds(10));
  EXPECT_EQ((*cfg)->drain_timeout, std::chrono::seconds(10));
  cfg = LoadString(
      std::string("[server]\nmax_connections = 500\nidle_timeout_seconds = 5\n") + kMinimal,
      "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->max_connections, 500);
  EXPECT_EQ((*cfg)->idle_timeout, std::chrono::seconds(5));
  EXPECT_NE(Error(std::string("[server]\nheader_timeout_seconds = 0\n") + kMinimal), "");
}

TEST(Config, StorageIsEmbeddedByDefaultAndTakesARedisUrl) {
  auto cfg = LoadString(kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->storage.redis_url, "");
  cfg = LoadString(std::string("[storage]\nredis_url = \"redis://10.0.0.5:6380/2\"\n"
                               "redis_timeout_ms = 250\n") +
                       kMinimal,
                   "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->storage.redis_url, "redis://10.0.0.5:6380/2");
  EXPECT_EQ((*cfg)->storage.redis_timeout_ms, 250);
  EXPECT_EQ((*cfg)->storage.redis_pool_size, 8);
  EXPECT_EQ((*cfg)->storage.postgres_url, "");
  EXPECT_NE(Error(std::string("[storage]\nredis_url = \"http://x\"\n") + kMinimal), "");
  EXPECT_NE(Error(std::string("[storage]\nredis_timeout_ms = 0\n") + kMinimal), "");
  EXPECT_NE(Error(std::string("[storage]\npostgres = 1\n") + kMinimal), "");
  EXPECT_FALSE((*cfg)->storage.fail_open);
  cfg = LoadString(std::string("[storage]\nredis_unavailable = \"fail_open\"\n") + kMinimal,
                   "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE((*cfg)->storage.fail_open);
  EXPECT_NE(Error(std::string("[storage]\nredis_unavailable = \"open\"\n") + kMinimal), "");
  EXPECT_EQ((*cfg)->storage.facts_sweep_seconds, 10);
  EXPECT_NE(Error(std::string("[storage]\nfacts_sweep_seconds = 0\n") + kMinimal), "");
}

TEST(Config, ReconcileRunsAtATimeOfDayAndFlagsAPercentage) {
  auto cfg = LoadString(kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->reconcile.at_minutes, 0);
  EXPECT_EQ((*cfg)->reconcile.flag_percent, 5);
  cfg = LoadString(std::string("[reconcile]\nat = \"02:30\"\nflag_percent = 10\n") + kMinimal,
                   "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->reconcile.at_minutes, 150);
  EXPECT_EQ((*cfg)->reconcile.flag_percent, 10);
  EXPECT_EQ(Error("[reconcile]\nat = \"24:00\"\n[plans.a]\n"),
            "test.toml:2: reconcile.at: must be a UTC time of day \"HH:MM\" (00:00 to 23:59)");
  for (const char* bad : {"\"2:30\"", "\"02:3x\"", "\"+1:30\"", "\"02-30\"", "230"}) {
    EXPECT_NE(Error(std::string("[reconcile]\nat = ") + bad + "\n[plans.a]\n"), "") << bad;
  }
  EXPECT_NE(Error("[reconcile]\nflag_percent = 0\n[plans.a]\n"), "");
  EXPECT_NE(Error("[reconcile]\nwhen = \"00:00\"\n[plans.a]\n"), "");
}

TEST(Config, LateEventsHaveAGraceOfAnHourByDefault) {
  auto cfg = LoadString(kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->late_event_grace, absl::Hours(1));
  cfg = LoadString(std::string("[server]\nlate_event_grace_minutes = 0\n") + kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->late_event_grace, absl::ZeroDuration());
  EXPECT_EQ(Error("[server]\nlate_event_grace_minutes = -1\n[plans.a]\n"),
            "test.toml:2: server.late_event_grace_minutes: must be between 0 and 10080");
  EXPECT_NE(Error("[server]\nlate_event_grace_minutes = 10081\n[plans.a]\n"), "");
}

TEST(Config, CreditCostsArePerChannelAndTypeWithDefaults) {
  auto cfg =
      LoadString(std::string("[credit_costs.telegram]\nmedia = 4\n") + kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const Catalog& cat = (*cfg)->catalog;
  EXPECT_EQ(cat.CreditCost("telegram", MessageType::kMedia), 4u);
  EXPECT_EQ(cat.CreditCost("telegram", MessageType::kText), 1u);  // left out: the default
  EXPECT_EQ(cat.CreditCost("whatsapp", MessageType::kTemplate), 3u);
  EXPECT_EQ(Error("[credit_costs.fax]\ntext = 1\n[plans.a]\n"),
            "test.toml:1: credit_costs.fax: is not one of the channels");
  EXPECT_NE(Error("[credit_costs.telegram]\nvideo = 1\n[plans.a]\n"), "");
  EXPECT_NE(Error("[credit_costs.telegram]\ntext = 0\n[plans.a]\n"), "");
  EXPECT_EQ(ParseMessageType("template"), MessageType::kTemplate);
  EXPECT_FALSE(ParseMessageType("video").has_value());
}

TEST(Config, MinimalConfigGetsDefaults) {
  auto cfg = LoadString(kMinimal, "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->default_plan, "basic");
  EXPECT_EQ((*cfg)->max_body_bytes, 1u << 20);
  EXPECT_EQ((*cfg)->catalog.profiles.size(), 3u);
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(Error("[plans.basic]\n[plans.basic.limits]\nbogus_meter = 5\n"),
            "test.toml:3: plans.basic.limits.bogus_meter: unknown meter (declare custom meters "
            "under [meters])");
  EXPECT_EQ(Error("[plans.basic]\ninterval = \"fortnight\"\n"),
            "test.toml:2: plans.basic.interval: interval \"fortnight\" must be \"month\" or "
            "\"<N>d\" (e.g. \"30d\")");
  EXPECT_EQ(Error("[server]\nmax_body_bytes = \"big\"\n[plans.a]\n"),
            "test.toml:2: server.max_body_bytes: must be an integer");
  EXPECT_EQ(Error("[server]\ndurability = \"maybe\"\n[plans.a]\n"),
            "test.toml:2: server.durability: must be \"process\" or \"fsync\"");
}

TEST(Config, DeliveryAndQueueingSendsAreChecked) {
  EXPECT_EQ(Error("[delivery]\nprovider = \"carrier-pigeon\"\n[plans.a]\n"),
            "test.toml:2: delivery.provider: must be \"log\" or \"http\"");
  EXPECT_EQ(Error("[delivery]\nprovider = \"http\"\n[plans.a]\n"),
            "test.toml:2: delivery.url: is required with provider = \"http\"");
  EXPECT_EQ(Error("[delivery]\nprovider = \"http\"\nurl = \"ftp://x\"\n[plans.a]\n"),
            "test.toml:3: delivery.url: must be an http:// or https:// URL");
  EXPECT_EQ(Error("[delivery]\ngive_back = \"sometimes\"\n[plans.a]\n"),
            "test.toml:2: delivery.give_back: must be \"never\", \"refused\" or \"always\"");
  auto defaults = config::LoadString("[plans.a]\n", "test.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ((*defaults)->delivery.give_back, "never");
  auto cfg = config::LoadString(
      "[delivery]\nprovider = \"http\"\nurl = \"https://wa.example/send\"\nmax_attempts = 4\n"
      "give_back = \"refused\"\n"
      "[plans.a]\n[plans.a.limits]\nmessages_sent = 5\n[plans.a.on_limit]\n"
      "messages_sent = \"queue\"\ncredits = \"queue\"\n",
      "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ((*cfg)->delivery.provider, "http");
  EXPECT_EQ((*cfg)->delivery.max_attempts, 4);
  EXPECT_EQ((*cfg)->delivery.give_back, "refused");
  const Plan* a = (*cfg)->catalog.FindPlan("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->on_limit[*(*cfg)->catalog.FindMeter("messages_sent")], OnLimit::kQueue);
  EXPECT_EQ(a->on_limit[*(*cfg)->catalog.FindMeter("credits")], OnLimit::kQueue);
}

TEST(Config, RejectsWhatWouldSilentlyMisbehave) {
  EXPECT_NE(Error("[plans.a]\n[plans.a.limits]\nmessages_received = 5\n"), "");
  EXPECT_NE(Error("[plans.a]\n[plans.a.limits]\nmessages_sent = -1\n"), "");
  EXPECT_EQ(Error("[plans.a]\n[plans.a.on_limit]\nai_tokens = \"queue\"\n"),
            "test.toml:3: plans.a.on_limit.ai_tokens: \"queue\" holds sends: only messages_sent "
            "and credits can queue");
  EXPECT_NE(Error("[plans.a]\nrate_limit_profile = \"gold\"\n"), "");
  EXPECT_NE(Error("[plans.a]\nlimts = {}\n"), "");  // typo
  EXPECT_NE(Error("[server]\ndefault_plan = \"zzz\"\n[plans.a]\n"), "");
  EXPECT_NE(Error("[meters.messages_sent]\nkind = \"gauge\"\n[plans.a]\n"), "");
  EXPECT_NE(Error("[[addons.sessions_active]]\nunits = 1\nprice_cents = 1\n[plans.a]\n"), "");
  EXPECT_NE(Error(""), "");  // no plans
  EXPECT_NE(Error("[plans.a]\nbands = { yellow = 90, red = 70 }\n"), "");
}

TEST(Config, SyntaxErrorsCarryLineAndColumn) {
  std::string e = Error("[plans.a]\nprice_cents = = 3\n");
  EXPECT_EQ(e.rfind("test.toml:2:", 0), 0u) << e;
}

TEST(Config, CustomMetersAndSoftLimits) {
  auto cfg = LoadString(R"(
[meters.voice_minutes]
kind = "counter"
[plans.a]
[plans.a.limits]
voice_minutes = 60
[plans.a.on_limit]
voice_minutes = "allow"
)",
                        "test.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  auto m = (*cfg)->catalog.FindMeter("voice_minutes");
  ASSERT_TRUE(m.has_value());
  const Plan* p = (*cfg)->catalog.FindPlan("a");
  EXPECT_EQ(p->limits[*m], 60u);
  EXPECT_EQ(p->on_limit[*m], OnLimit::kAllow);
}

}  // namespace
}  // namespace quotum::config
