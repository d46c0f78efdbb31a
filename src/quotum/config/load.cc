#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quotum/config/config.h"
#include "quotum/core/ids.h"
#include "quotum/core/string_views.h"

namespace quotum::config {
namespace {

// Collects the first validation error with its location.
class Checker {
 public:
  explicit Checker(std::string origin) : origin_(std::move(origin)) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  void Fail(const toml::node* node, std::string_view key, std::string_view message) {
    if (!error_.empty()) return;
    int line = node ? static_cast<int>(node->source().begin.line) : 0;
    error_ = Cat(origin_, ":", line, ": ", key, ": ", message);
  }

  // Optional string at `t[name]`.
  std::optional<std::string> Str(const toml::table& t, std::string_view name,
                                 std::string_view key) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    if (auto v = n->value<std::string>()) return *v;
    Fail(n, key, "must be a string");
    return std::nullopt;
  }

  std::optional<bool> Bool(const toml::table& t, std::string_view name, std::string_view key) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    if (auto v = n->value<bool>()) return *v;
    Fail(n, key, "must be true or false");
    return std::nullopt;
  }

  // Optional integer at `t[name]` within [lo, hi].
  std::optional<int64_t> Int(const toml::table& t, std::string_view name, std::string_view key,
                             int64_t lo, int64_t hi) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v) {
      Fail(n, key, "must be an integer");
      return std::nullopt;
    }
    if (*v < lo || *v > hi) {
      Fail(n, key, Cat("must be between ", lo, " and ", hi));
      return std::nullopt;
    }
    return v;
  }

  std::optional<double> Number(const toml::table& t, std::string_view name, std::string_view key,
                               double lo, double hi) {
    const toml::node* n = t.get(name);
    if (!n) return std::nullopt;
    std::optional<double> v;
    if (n->is_integer()) v = static_cast<double>(*n->value<int64_t>());
    if (n->is_floating_point()) v = *n->value<double>();
    if (!v) {
      Fail(n, key, "must be a number");
      return std::nullopt;
    }
    if (*v < lo || *v > hi) {
      Fail(n, key, Cat("must be between ", lo, " and ", hi));
      return std::nullopt;
    }
    return v;
  }

  const toml::table* Table(const toml::table& t, std::string_view name, std::string_view key) {
    const toml::node* n = t.get(name);
    if (!n) return nullptr;
    if (const auto* tab = n->as_table()) return tab;
    Fail(n, key, "must be a table");
    return nullptr;
  }

  const toml::array* Array(const toml::table& t, std::string_view name, std::string_view key) {
    const toml::node* n = t.get(name);
    if (!n) return nullptr;
    if (const auto* arr = n->as_array()) return arr;
    Fail(n, key, "must be an array");
    return nullptr;
  }

  // Rejects keys of `t` not in `known`, so that typos do not pass silently.
  void OnlyKeys(const toml::table& t, std::string_view prefix,
                std::initializer_list<std::string_view> known) {
    for (const auto& [k, v] : t) {
      bool found = false;
      for (auto name : known) found |= (k.str() == name);
      if (!found) {
        Fail(&v, Join(prefix, k.str()),
             Cat("unknown key (expected one of: ",
                 absl::StrJoin(std::vector<std::string>(known.begin(), known.end()), ", "), ")"));
      }
    }
  }

  static std::string Join(std::string_view prefix, std::string_view name) {
    return prefix.empty() ? std::string(name) : Cat(prefix, ".", name);
  }

 private:
  std::string origin_;
  std::string error_;
};

void LoadServer(Checker& c, const toml::table& root, Config& cfg) {
  const toml::table* s = c.Table(root, "server", "server");
  if (!s) return;
  c.OnlyKeys(
      *s, "server",
      {"listen", "data_dir", "durability", "max_body_bytes", "io_threads", "idempotency_ttl_hours",
       "default_plan", "session_lease_ttl_seconds", "max_connections", "idle_timeout_seconds",
       "header_timeout_seconds", "drain_timeout_seconds", "late_event_grace_minutes", "journal"});
  if (auto v = c.Str(*s, "listen", "server.listen")) cfg.listen = *v;
  if (auto v = c.Str(*s, "data_dir", "server.data_dir")) cfg.data_dir = *v;
  if (auto v = c.Str(*s, "durability", "server.durability")) {
    if (*v == "process") {
      cfg.durability = Durability::kProcess;
    } else if (*v == "fsync") {
      cfg.durability = Durability::kFsync;
    } else {
      c.Fail(s->get("durability"), "server.durability", "must be \"process\" or \"fsync\"");
    }
  }
  if (auto v = c.Bool(*s, "journal", "server.journal")) cfg.journal = *v;
  if (auto v = c.Int(*s, "max_body_bytes", "server.max_body_bytes", 1024, 64LL << 20))
    cfg.max_body_bytes = static_cast<uint64_t>(*v);
  if (auto v = c.Int(*s, "io_threads", "server.io_threads", 1, 256)) cfg.io_threads = int(*v);
  if (auto v = c.Int(*s, "idempotency_ttl_hours", "server.idempotency_ttl_hours", 1, 24 * 30))
    cfg.idempotency_ttl = absl::Hours(*v);
  if (auto v = c.Str(*s, "default_plan", "server.default_plan")) cfg.default_plan = *v;
  if (auto v =
          c.Int(*s, "session_lease_ttl_seconds", "server.session_lease_ttl_seconds", 1, 86400 * 7))
    cfg.session_lease_ttl = absl::Seconds(*v);
  if (auto v = c.Int(*s, "max_connections", "server.max_connections", 1, 1 << 24))
    cfg.max_connections = int(*v);
  if (auto v = c.Int(*s, "idle_timeout_seconds", "server.idle_timeout_seconds", 1, 86400))
    cfg.idle_timeout = std::chrono::seconds(*v);
  if (auto v = c.Int(*s, "header_timeout_seconds", "server.header_timeout_seconds", 1, 3600))
    cfg.header_timeout = std::chrono::seconds(*v);
  if (auto v = c.Int(*s, "drain_timeout_seconds", "server.drain_timeout_seconds", 1, 3600))
    cfg.drain_timeout = std::chrono::seconds(*v);
  if (auto v =
          c.Int(*s, "late_event_grace_minutes", "server.late_event_grace_minutes", 0, 7 * 24 * 60))
    cfg.late_event_grace = absl::Minutes(*v);
}

void LoadStorage(Checker& c, const toml::table& root, Storage& st) {
  const toml::table* s = c.Table(root, "storage", "storage");
  if (!s) return;
  c.OnlyKeys(*s, "storage",
             {"redis_url", "redis_timeout_ms", "redis_pool_size", "postgres_url",
              "redis_unavailable", "facts_sweep_seconds"});
  if (auto v = c.Int(*s, "facts_sweep_seconds", "storage.facts_sweep_seconds", 1, 3600))
    st.facts_sweep_seconds = int(*v);
  if (auto v = c.Str(*s, "redis_unavailable", "storage.redis_unavailable")) {
    if (*v == "fail_open" || *v == "fail_closed") {
      st.fail_open = *v == "fail_open";
    } else {
      c.Fail(s->get("redis_unavailable"), "storage.redis_unavailable",
             "must be \"fail_closed\" or \"fail_open\"");
    }
  }
  if (auto v = c.Str(*s, "postgres_url", "storage.postgres_url")) st.postgres_url = *v;
  if (auto v = c.Str(*s, "redis_url", "storage.redis_url")) {
    if (!v->starts_with("redis://")) {
      c.Fail(s->get("redis_url"), "storage.redis_url", "must be redis://HOST[:PORT][/DB]");
    }
    st.redis_url = *v;
  }
  if (auto v = c.Int(*s, "redis_timeout_ms", "storage.redis_timeout_ms", 1, 60'000))
    st.redis_timeout_ms = int(*v);
  if (auto v = c.Int(*s, "redis_pool_size", "storage.redis_pool_size", 1, 1024))
    st.redis_pool_size = int(*v);
}

void LoadWebhooks(Checker& c, const toml::table& root, Webhooks& w) {
  const toml::table* t = c.Table(root, "webhooks", "webhooks");
  if (!t) return;
  c.OnlyKeys(*t, "webhooks",
             {"allow_hosts", "max_per_tenant", "max_attempts", "retry_base_ms", "timeout_ms",
              "forecast_check_seconds"});
  if (const toml::array* arr = c.Array(*t, "allow_hosts", "webhooks.allow_hosts")) {
    for (const auto& n : *arr) {
      auto v = n.value<std::string>();
      if (!v || v->empty()) {
        c.Fail(&n, "webhooks.allow_hosts", "each entry must be a host name, an IP or a CIDR");
        return;
      }
      w.allow_hosts.push_back(*v);
    }
  }
  if (auto v = c.Int(*t, "max_per_tenant", "webhooks.max_per_tenant", 1, 1000))
    w.max_per_tenant = int(*v);
  if (auto v = c.Int(*t, "max_attempts", "webhooks.max_attempts", 1, 100)) w.max_attempts = int(*v);
  if (auto v = c.Int(*t, "retry_base_ms", "webhooks.retry_base_ms", 10, 3'600'000))
    w.retry_base_ms = int(*v);
  if (auto v = c.Int(*t, "timeout_ms", "webhooks.timeout_ms", 100, 60'000)) w.timeout_ms = int(*v);
  if (auto v = c.Int(*t, "forecast_check_seconds", "webhooks.forecast_check_seconds", 1, 86'400))
    w.forecast_check_seconds = int(*v);
}

void LoadDelivery(Checker& c, const toml::table& root, Delivery& d) {
  const toml::table* t = c.Table(root, "delivery", "delivery");
  if (!t) return;
  c.OnlyKeys(*t, "delivery",
             {"provider", "url", "token", "timeout_ms", "max_attempts", "retry_base_ms",
              "retry_cap_ms", "give_back"});
  if (auto v = c.Str(*t, "provider", "delivery.provider")) {
    if (*v != "log" && *v != "http") {
      c.Fail(t->get("provider"), "delivery.provider", "must be \"log\" or \"http\"");
    }
    d.provider = *v;
  }
  if (auto v = c.Str(*t, "url", "delivery.url")) {
    if (!v->starts_with("http://") && !v->starts_with("https://")) {
      c.Fail(t->get("url"), "delivery.url", "must be an http:// or https:// URL");
    }
    d.url = *v;
  }
  if (d.provider == "http" && d.url.empty()) {
    c.Fail(t->get("provider"), "delivery.url", "is required with provider = \"http\"");
  }
  if (auto v = c.Str(*t, "token", "delivery.token")) d.token = *v;
  if (auto v = c.Int(*t, "timeout_ms", "delivery.timeout_ms", 100, 120'000)) d.timeout_ms = int(*v);
  if (auto v = c.Int(*t, "max_attempts", "delivery.max_attempts", 1, 100)) d.max_attempts = int(*v);
  if (auto v = c.Int(*t, "retry_base_ms", "delivery.retry_base_ms", 10, 3'600'000))
    d.retry_base_ms = int(*v);
  if (auto v = c.Int(*t, "retry_cap_ms", "delivery.retry_cap_ms", 10, 86'400'000))
    d.retry_cap_ms = int(*v);
  if (auto v = c.Str(*t, "give_back", "delivery.give_back")) {
    if (*v != "never" && *v != "refused" && *v != "always") {
      c.Fail(t->get("give_back"), "delivery.give_back",
             "must be \"never\", \"refused\" or \"always\"");
    }
    d.give_back = *v;
  }
}

void LoadReconcile(Checker& c, const toml::table& root, Reconcile& r) {
  const toml::table* t = c.Table(root, "reconcile", "reconcile");
  if (!t) return;
  c.OnlyKeys(*t, "reconcile", {"at", "flag_percent"});
  if (auto v = c.Str(*t, "at", "reconcile.at")) {
    int hours = 0, minutes = 0;
    if (v->size() != 5 || (*v)[2] != ':' || !absl::SimpleAtoi(v->substr(0, 2), &hours) ||
        !absl::SimpleAtoi(v->substr(3, 2), &minutes) || hours > 23 || minutes > 59 ||
        !absl::ascii_isdigit((*v)[0]) || !absl::ascii_isdigit((*v)[3])) {
      c.Fail(t->get("at"), "reconcile.at", "must be a UTC time of day \"HH:MM\" (00:00 to 23:59)");
    } else {
      r.at_minutes = hours * 60 + minutes;
    }
  }
  if (auto v = c.Int(*t, "flag_percent", "reconcile.flag_percent", 1, 100))
    r.flag_percent = int(*v);
}

void LoadEmail(Checker& c, const toml::table& root, Email& e) {
  const toml::table* t = c.Table(root, "email", "email");
  if (!t) return;
  c.OnlyKeys(*t, "email", {"smtp_url", "starttls", "user", "password", "from"});
  if (auto v = c.Str(*t, "smtp_url", "email.smtp_url")) {
    if (!v->starts_with("smtp://") && !v->starts_with("smtps://")) {
      c.Fail(t->get("smtp_url"), "email.smtp_url",
             "must be smtp://HOST[:PORT] or smtps://HOST[:PORT]");
    }
    e.smtp_url = *v;
  }
  if (auto v = c.Bool(*t, "starttls", "email.starttls")) e.starttls = *v;
  if (auto v = c.Str(*t, "user", "email.user")) e.user = *v;
  if (auto v = c.Str(*t, "password", "email.password")) e.password = *v;
  if (auto v = c.Str(*t, "from", "email.from")) e.from = *v;
  if (!e.smtp_url.empty() && e.from.empty()) {
    c.Fail(t->get("smtp_url"), "email.from", "is required with smtp_url");
  }
}

void LoadMeters(Checker& c, const toml::table& root, Catalog& cat) {
  cat.meters = Catalog::BuiltinMeters();
  const toml::table* m = c.Table(root, "meters", "meters");
  if (!m) return;
  for (const auto& [name, node] : *m) {
    std::string key = Cat("meters.", name.str());
    const toml::table* t = node.as_table();
    if (!t) {
      c.Fail(&node, key, "must be a table");
      return;
    }
    c.OnlyKeys(*t, key, {"kind", "reported_by"});
    if (!IsValidId(ToAbsl(name.str())))
      c.Fail(&node, key, "meter names use [A-Za-z0-9_.-], 1-64 chars");
    MeterKind kind = MeterKind::kCounter;
    if (auto k = c.Str(*t, "kind", key + ".kind")) {
      if (*k == "gauge") {
        kind = MeterKind::kGauge;
      } else if (*k != "counter") {
        c.Fail(t->get("kind"), key + ".kind", "must be \"counter\" or \"gauge\"");
      }
    }
    std::optional<bool> by_server;
    if (auto r = c.Str(*t, "reported_by", key + ".reported_by")) {
      if (*r == "server" || *r == "client") {
        by_server = *r == "server";
      } else {
        c.Fail(t->get("reported_by"), key + ".reported_by", "must be \"server\" or \"client\"");
      }
    }
    MeterDef* def = nullptr;
    for (auto& d : cat.meters) {
      if (d.name == name.str()) def = &d;
    }
    if (def) {
      if (def->kind != kind) c.Fail(&node, key, "a built-in meter's kind cannot be changed");
      if (def->name == meters::kApiCalls && by_server == false) {
        c.Fail(t->get("reported_by"), key + ".reported_by",
               "api_calls is counted by the server; it cannot be reported by clients");
      }
    } else {
      def = &cat.meters.emplace_back(MeterDef{std::string(name.str()), kind, true});
    }
    if (by_server) def->reported_by_server = *by_server;
  }
}

void LoadChannels(Checker& c, const toml::table& root, Catalog& cat) {
  const toml::array* arr = c.Array(root, "channels", "channels");
  if (!arr) {
    cat.channels = {"whatsapp", "telegram", "messenger", "webchat"};
    return;
  }
  for (const auto& n : *arr) {
    auto v = n.value<std::string>();
    if (!v || !IsValidId(*v)) {
      c.Fail(&n, "channels", "each channel must be a name of [A-Za-z0-9_.-]");
      return;
    }
    cat.channels.push_back(*v);
  }
  if (cat.channels.empty()) c.Fail(arr, "channels", "must list at least one channel");
}

// [credit_costs.<channel>] text/media/template: credits per message; a channel
// or type left out costs kDefaultCreditCosts. After LoadChannels.
void LoadCreditCosts(Checker& c, const toml::table& root, Catalog& cat) {
  cat.credit_costs.assign(cat.channels.size(), kDefaultCreditCosts);
  const toml::table* t = c.Table(root, "credit_costs", "credit_costs");
  if (!t) return;
  for (const auto& [channel, node] : *t) {
    const std::string key = Cat("credit_costs.", channel.str());
    const auto it = std::find(cat.channels.begin(), cat.channels.end(), channel.str());
    if (it == cat.channels.end()) {
      c.Fail(&node, key, "is not one of the channels");
      continue;
    }
    const toml::table* costs = c.Table(*t, channel.str(), key);
    if (!costs) continue;
    c.OnlyKeys(*costs, key, {"text", "media", "template"});
    CreditCosts& out = cat.credit_costs[static_cast<size_t>(it - cat.channels.begin())];
    for (size_t i = 0; i < kMessageTypeCount; ++i) {
      const std::string type(MessageTypeName(static_cast<MessageType>(i)));
      if (auto v = c.Int(*costs, type, Cat(key, ".", type), 1, 1'000'000)) out[i] = uint64_t(*v);
    }
  }
}

void LoadProfiles(Checker& c, const toml::table& root, Catalog& cat) {
  const toml::table* p = c.Table(root, "rate_limit_profiles", "rate_limit_profiles");
  if (!p) {
    cat.profiles = {{"trial", 50, 10, 2}, {"standard", 100, 30, 10}, {"premium", 500, 100, 50}};
    return;
  }
  for (const auto& [name, node] : *p) {
    std::string key = Cat("rate_limit_profiles.", name.str());
    const toml::table* t = node.as_table();
    if (!t) {
      c.Fail(&node, key, "must be a table");
      return;
    }
    c.OnlyKeys(*t, key, {"general", "messages", "sessions"});
    RateLimitProfile prof{std::string(name.str())};
    if (auto v = c.Int(*t, "general", key + ".general", 1, 1'000'000'000))
      prof.general = uint32_t(*v);
    if (auto v = c.Int(*t, "messages", key + ".messages", 1, 1'000'000'000))
      prof.messages = uint32_t(*v);
    if (auto v = c.Int(*t, "sessions", key + ".sessions", 1, 1'000'000'000))
      prof.sessions = uint32_t(*v);
    cat.profiles.push_back(prof);
  }
}

void LoadRateRules(Checker& c, const toml::table& root, Config& cfg) {
  const toml::table* r = c.Table(root, "rate_limits", "rate_limits");
  if (!r) return;
  using ratelimit::Category;
  for (const auto& [name, node] : *r) {
    std::string key = Cat("rate_limits.", name.str());
    const std::optional<Category> cat = ratelimit::CategoryFromName(name.str());
    const toml::table* t = node.as_table();
    if (!cat || !t) {
      c.Fail(&node, key, "must be a table named general, messages, sessions or qr");
      return;
    }
    c.OnlyKeys(*t, key, {"algorithm", "window_seconds", "limit", "shadow"});
    ratelimit::RuleSpec& spec = cfg.rate_rules[*cat];
    if (auto a = c.Str(*t, "algorithm", key + ".algorithm")) {
      if (auto algorithm = ratelimit::AlgorithmFromName(*a)) {
        spec.algorithm = *algorithm;
      } else {
        c.Fail(t->get("algorithm"), key + ".algorithm",
               "must be \"sliding_window\", \"token_bucket\" or \"fixed_window\"");
      }
    }
    if (auto w = c.Int(*t, "window_seconds", key + ".window_seconds", 1, 86400 * 31))
      spec.window_ns = *w * 1'000'000'000LL;
    if (auto l = c.Int(*t, "limit", key + ".limit", 1, 1'000'000'000)) spec.limit = uint64_t(*l);
    if (const toml::node* s = t->get("shadow")) {
      if (auto b = s->value<bool>()) {
        spec.shadow = *b;
      } else {
        c.Fail(s, key + ".shadow", "must be true or false");
      }
    }
  }
}

// plans.<name>.shadow: meters (or "warmup") decided and recorded, never denied.
void LoadPlanShadow(Checker& c, const toml::table& t, const std::string& key, const Catalog& cat,
                    Plan& plan) {
  const toml::array* sh = c.Array(t, "shadow", key + ".shadow");
  if (!sh) return;
  for (const auto& v : *sh) {
    auto name = v.value<std::string>();
    auto id = name ? cat.FindMeter(ToAbsl(*name)) : std::nullopt;
    if (name && *name == "warmup") {
      plan.warmup_shadow = true;
    } else if (id) {
      plan.shadow[*id] = true;
    } else {
      c.Fail(&v, key + ".shadow", "each entry is a meter name or \"warmup\"");
      break;
    }
  }
}

// plans.<name>.limits: a non-negative integer per limitable meter.
void LoadPlanLimits(Checker& c, const toml::table& t, const std::string& key, const Catalog& cat,
                    Plan& plan) {
  const toml::table* limits = c.Table(t, "limits", key + ".limits");
  if (!limits) return;
  for (const auto& [meter, v] : *limits) {
    std::string mkey = Cat(key, ".limits.", meter.str());
    auto id = cat.FindMeter(ToAbsl(meter.str()));
    if (!id) {
      c.Fail(&v, mkey, "unknown meter (declare custom meters under [meters])");
      continue;
    }
    if (!cat.meters[*id].limitable) {
      c.Fail(&v, mkey, "this meter is tracked only and cannot carry a limit");
      continue;
    }
    auto n = v.is_integer() ? v.value<int64_t>() : std::nullopt;
    if (!n || *n < 0) {
      c.Fail(&v, mkey, "must be a non-negative integer (omit the key for unlimited)");
      continue;
    }
    plan.limits[*id] = static_cast<uint64_t>(*n);
  }
}

// plans.<name>.on_limit: "reject" or "allow" per meter, or "queue" for the
// meters a send charges (messages_sent, credits).
void LoadPlanOnLimit(Checker& c, const toml::table& t, const std::string& key, const Catalog& cat,
                     Plan& plan) {
  const toml::table* pol = c.Table(t, "on_limit", key + ".on_limit");
  if (!pol) return;
  for (const auto& [meter, v] : *pol) {
    std::string mkey = Cat(key, ".on_limit.", meter.str());
    auto id = cat.FindMeter(ToAbsl(meter.str()));
    auto s = v.value<std::string>();
    if (!id) {
      c.Fail(&v, mkey, "unknown meter");
    } else if (s && *s == "reject") {
      plan.on_limit[*id] = OnLimit::kReject;
    } else if (s && *s == "allow") {
      plan.on_limit[*id] = OnLimit::kAllow;
    } else if (s && *s == "queue" &&
               (meter.str() == meters::kMessagesSent || meter.str() == meters::kCredits)) {
      plan.on_limit[*id] = OnLimit::kQueue;
    } else if (s && *s == "queue") {
      c.Fail(&v, mkey, "\"queue\" holds sends: only messages_sent and credits can queue");
    } else {
      c.Fail(&v, mkey, "must be \"reject\", \"allow\" or (messages_sent, credits) \"queue\"");
    }
  }
}

// plans.<name>.alert_thresholds, .bands and .warmup.
void LoadPlanAlertsAndWarmup(Checker& c, const toml::table& t, const std::string& key, Plan& plan) {
  if (const toml::array* th = c.Array(t, "alert_thresholds", key + ".alert_thresholds")) {
    plan.alert_thresholds.clear();
    for (const auto& v : *th) {
      auto n = v.is_integer() ? v.value<int64_t>() : std::nullopt;
      if (!n || *n < 1 || *n > 1000) {
        c.Fail(&v, key + ".alert_thresholds", "each threshold is an integer percentage 1-1000");
        break;
      }
      plan.alert_thresholds.push_back(int(*n));
    }
  }
  if (const toml::table* b = c.Table(t, "bands", key + ".bands")) {
    c.OnlyKeys(*b, key + ".bands", {"yellow", "red"});
    plan.bands.yellow = c.Number(*b, "yellow", key + ".bands.yellow", 0, 1000).value_or(70);
    plan.bands.red = c.Number(*b, "red", key + ".bands.red", 0, 1000).value_or(90);
    if (plan.bands.red < plan.bands.yellow)
      c.Fail(b, key + ".bands", "red must not be below yellow");
  }
  if (const toml::array* w = c.Array(t, "warmup", key + ".warmup")) {
    for (const auto& v : *w) {
      auto n = v.is_integer() ? v.value<int64_t>() : std::nullopt;
      if (!n || *n < 1) {
        c.Fail(&v, key + ".warmup", "each daily cap is a positive integer");
        break;
      }
      plan.warmup.push_back(uint64_t(*n));
    }
  }
}

// plans.<name>.messaging_tiers: steps, channels, types, step_up_delay_seconds.
void LoadPlanTiers(Checker& c, const toml::table& t, const std::string& plan_key,
                   const Catalog& cat, Plan& plan) {
  const std::string key = plan_key + ".messaging_tiers";
  const toml::table* m = c.Table(t, "messaging_tiers", key);
  if (!m) return;
  c.OnlyKeys(*m, key, {"steps", "channels", "types", "step_up_delay_seconds"});
  TierPolicy tiers;
  if (const toml::array* steps = c.Array(*m, "steps", key + ".steps")) {
    tiers.steps.clear();
    for (const auto& v : *steps) {
      auto n = v.is_integer() ? v.value<int64_t>() : std::nullopt;
      if (!n || *n < 1 || (!tiers.steps.empty() && uint64_t(*n) <= tiers.steps.back())) {
        c.Fail(&v, key + ".steps", "each step is a positive integer above the one before");
        break;
      }
      tiers.steps.push_back(uint64_t(*n));
    }
    if (steps->empty()) c.Fail(steps, key + ".steps", "must list at least one step");
  }
  if (const toml::array* chans = c.Array(*m, "channels", key + ".channels")) {
    tiers.channels.clear();
    for (const auto& v : *chans) {
      auto name = v.value<std::string>();
      if (!name ||
          std::find(cat.channels.begin(), cat.channels.end(), *name) == cat.channels.end()) {
        c.Fail(&v, key + ".channels", "each entry names a channel of [channels]");
        break;
      }
      tiers.channels.push_back(*name);
    }
    if (chans->empty()) c.Fail(chans, key + ".channels", "must list at least one channel");
  }
  if (const toml::array* types = c.Array(*m, "types", key + ".types")) {
    tiers.types = {false, false, false};
    for (const auto& v : *types) {
      auto name = v.value<std::string>();
      auto type = name ? ParseMessageType(ToAbsl(*name)) : std::nullopt;
      if (!type) {
        c.Fail(&v, key + ".types", "each entry is \"text\", \"media\" or \"template\"");
        break;
      }
      tiers.types[static_cast<size_t>(*type)] = true;
    }
    if (types->empty()) c.Fail(types, key + ".types", "must list at least one type");
  }
  if (auto d = c.Int(*m, "step_up_delay_seconds", key + ".step_up_delay_seconds", 0, 86400 * 30)) {
    tiers.step_up_delay = absl::Seconds(*d);
  }
  plan.messaging_tiers = std::move(tiers);
}

void LoadPlan(Checker& c, std::string_view name, const toml::node& node, Catalog& cat) {
  std::string key = Cat("plans.", name);
  const toml::table* t = node.as_table();
  if (!t) {
    c.Fail(&node, key, "must be a table");
    return;
  }
  c.OnlyKeys(
      *t, key,
      {"display_name", "price_cents", "interval", "anchor", "limits", "on_limit",
       "alert_thresholds", "bands", "rate_limit_profile", "warmup", "shadow", "messaging_tiers"});
  Plan plan;
  plan.name = std::string(name);
  plan.display_name = c.Str(*t, "display_name", key + ".display_name").value_or(plan.name);
  plan.price_cents = c.Int(*t, "price_cents", key + ".price_cents", -1, 1LL << 40).value_or(0);
  std::string interval = c.Str(*t, "interval", key + ".interval").value_or("month");
  std::string anchor = c.Str(*t, "anchor", key + ".anchor").value_or("subscription");
  auto parsed = ParseBillingInterval(interval, anchor);
  if (!parsed.ok()) {
    c.Fail(t->get("interval") ? t->get("interval") : &node, key + ".interval",
           ToStd(parsed.status().message()));
  } else {
    plan.interval = *parsed;
  }
  plan.limits.assign(cat.meters.size(), std::nullopt);
  plan.on_limit.assign(cat.meters.size(), OnLimit::kReject);
  plan.shadow.assign(cat.meters.size(), false);
  LoadPlanShadow(c, *t, key, cat, plan);
  LoadPlanLimits(c, *t, key, cat, plan);
  LoadPlanOnLimit(c, *t, key, cat, plan);
  LoadPlanAlertsAndWarmup(c, *t, key, plan);
  LoadPlanTiers(c, *t, key, cat, plan);
  plan.rate_limit_profile =
      c.Str(*t, "rate_limit_profile", key + ".rate_limit_profile").value_or("standard");
  if (!cat.FindProfile(plan.rate_limit_profile)) {
    c.Fail(t->get("rate_limit_profile") ? t->get("rate_limit_profile") : &node,
           key + ".rate_limit_profile", "names no profile under [rate_limit_profiles]");
  }
  cat.plans.push_back(std::move(plan));
}

/// The packs on sale in `section` ("addons": recurring; "topups": one-off),
/// per counter meter: an array of {units, price_cents}.
void LoadPacks(Checker& c, const toml::table& root, const std::string& section, const Catalog& cat,
               std::vector<AddonPack>& out) {
  const toml::table* a = c.Table(root, section, section);
  if (!a) return;
  for (const auto& [meter, node] : *a) {
    std::string key = Cat(section, ".", meter.str());
    auto id = cat.FindMeter(ToAbsl(meter.str()));
    if (!id || cat.meters[*id].kind != MeterKind::kCounter) {
      c.Fail(&node, key, "packs exist only for counter meters");
      continue;
    }
    const toml::array* packs = node.as_array();
    if (!packs) {
      c.Fail(&node, key, "must be an array of {units, price_cents}");
      continue;
    }
    for (const auto& p : *packs) {
      const toml::table* t = p.as_table();
      if (!t) {
        c.Fail(&p, key, "each pack is a table {units, price_cents}");
        break;
      }
      c.OnlyKeys(*t, key, {"units", "price_cents"});
      auto units = c.Int(*t, "units", key + ".units", 1, 1LL << 50);
      auto price = c.Int(*t, "price_cents", key + ".price_cents", 0, 1LL << 40);
      if (!units || !price) {
        c.Fail(t, key, "each pack needs units and price_cents");
        break;
      }
      out.push_back(AddonPack{std::string(meter.str()), uint64_t(*units), *price});
    }
  }
}

absl::StatusOr<std::shared_ptr<const Config>> Build(const toml::table& root,
                                                    const std::string& origin) {
  Checker c(origin);
  auto cfg = std::make_shared<Config>();
  cfg->source_path = origin;
  c.OnlyKeys(root, "",
             {"server", "storage", "webhooks", "delivery", "email", "reconcile", "channels",
              "credit_costs", "meters", "rate_limit_profiles", "rate_limits", "plans", "addons",
              "topups"});
  LoadServer(c, root, *cfg);
  LoadStorage(c, root, cfg->storage);
  LoadWebhooks(c, root, cfg->webhooks);
  LoadDelivery(c, root, cfg->delivery);
  LoadEmail(c, root, cfg->email);
  LoadReconcile(c, root, cfg->reconcile);
  LoadRateRules(c, root, *cfg);
  Catalog& cat = cfg->catalog;
  LoadMeters(c, root, cat);
  LoadChannels(c, root, cat);
  LoadCreditCosts(c, root, cat);
  LoadProfiles(c, root, cat);
  cat.Index();
  if (const toml::table* plans = c.Table(root, "plans", "plans")) {
    for (const auto& [name, node] : *plans) {
      if (!IsValidId(ToAbsl(name.str()))) c.Fail(&node, Cat("plans.", name.str()), "bad plan name");
      LoadPlan(c, name.str(), node, cat);
    }
  }
  if (c.ok() && cat.plans.empty()) c.Fail(&root, "plans", "at least one plan is required");
  LoadPacks(c, root, "addons", cat, cat.addons);
  LoadPacks(c, root, "topups", cat, cat.topups);
  cat.Index();
  if (c.ok()) {
    if (cfg->default_plan.empty()) cfg->default_plan = cat.plans.front().name;
    if (!cat.FindPlan(cfg->default_plan))
      c.Fail(root.get("server"), "server.default_plan", "names no plan under [plans]");
  }
  if (!c.ok()) return absl::InvalidArgumentError(c.error());
  return std::shared_ptr<const Config>(std::move(cfg));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Config>> LoadString(std::string_view text,
                                                         const std::string& origin) {
  // The packaged toml++ is built with exceptions; they stop here.
  toml::table table;
  try {
    table = toml::parse(text, origin);
  } catch (const toml::parse_error& err) {
    return absl::InvalidArgumentError(Cat(origin, ":", err.source().begin.line, ":",
                                          err.source().begin.column, ": ", err.description()));
  }
  return Build(table, origin);
}

absl::StatusOr<std::shared_ptr<const Config>> LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat(path, ": cannot open config file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadString(ss.str(), path);
}

}  // namespace quotum::config
