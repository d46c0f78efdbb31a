#include "quotum/store/redis/redis_facts_stream.h"

#include <unistd.h>

#include <iostream>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quotum/core/string_views.h"
#include "quotum/store/redis/facts_codec.h"
#include "quotum/store/redis/lease_codec.h"

namespace quotum::store::redis {
namespace {

constexpr std::string_view kGroup = "quotum";

// The fields of one entry: [field, value, field, value, ...].
struct EntryFields {
  std::string_view charged, api_call, allowed, facts, before, credits_before;
  std::string_view credits_given_back;  // a give-back's credits (redis_give_back.cc)
  // Top-ups: the limits judged, what was drawn.
  std::string_view limit_judged, credits_limit_judged, topup_draws;
  // A lease change (lease.lua): kind, id, record, event.
  std::string_view kind, id, record, event;
};

EntryFields FieldsOf(ReplyView fields) {
  EntryFields f;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    const std::string_view name = fields[i].str(), value = fields[i + 1].str();
    if (name == "c") f.charged = value;
    if (name == "a") f.api_call = value;
    if (name == "ok") f.allowed = value;
    if (name == "f") f.facts = value;
    if (name == "b") f.before = value;
    if (name == "cb") f.credits_before = value;
    if (name == "gc") f.credits_given_back = value;
    if (name == "tl") f.limit_judged = value;
    if (name == "ctl") f.credits_limit_judged = value;
    if (name == "td") f.topup_draws = value;
    if (name == "k") f.kind = value;
    if (name == "id") f.id = value;
    if (name == "r") f.record = value;
    if (name == "ev") f.event = value;
  }
  return f;
}

// The top-up fields of `f` into `e`: "tl", "ctl" (counts), "td"
// ("id:units,...").
absl::Status ReadTopupFields(const EntryFields& f, engine::FactsEntry& e) {
  for (auto [text, out] : {std::pair{f.limit_judged, &e.limit_judged},
                           std::pair{f.credits_limit_judged, &e.credits_limit_judged}}) {
    if (uint64_t v = 0; !text.empty()) {
      if (!absl::SimpleAtoi(ToAbsl(text), &v)) {
        return absl::InvalidArgumentError("a limit judged (tl, ctl) is not a count");
      }
      *out = v;
    }
  }
  if (f.topup_draws.empty()) return absl::OkStatus();
  for (absl::string_view draw : absl::StrSplit(ToAbsl(f.topup_draws), ',')) {
    const size_t colon = draw.rfind(':');
    uint64_t units = 0;
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(draw.substr(colon + 1), &units)) {
      return absl::InvalidArgumentError("a top-up draw (td) is not \"id:units\"");
    }
    e.topup_draws.emplace_back(std::string(draw.substr(0, colon)), units);
  }
  return absl::OkStatus();
}

absl::StatusOr<engine::FactsEntry> EntryOf(const std::string& tenant, ReplyView entry) {
  if (entry.size() != 2) return absl::InvalidArgumentError("not an [id, fields] pair");
  engine::FactsEntry e;
  e.tenant_id = tenant;
  e.stream_id = std::string(entry[0].str());
  const EntryFields f = FieldsOf(entry[1]);
  if (!absl::SimpleAtoi(ToAbsl(f.charged), &e.charged)) {
    return absl::InvalidArgumentError("no units charged (c)");
  }
  e.api_call = f.api_call == "1";
  e.allowed = f.allowed == "1";
  if (uint64_t before = 0; !f.before.empty()) {
    if (!absl::SimpleAtoi(ToAbsl(f.before), &before)) {
      return absl::InvalidArgumentError("the counter before (b) is not a count");
    }
    e.counter_before = before;
  }
  if (uint64_t before = 0; !f.credits_before.empty()) {
    if (!absl::SimpleAtoi(ToAbsl(f.credits_before), &before)) {
      return absl::InvalidArgumentError("the credits before (cb) is not a count");
    }
    e.credits_before = before;
  }
  if (!f.credits_given_back.empty() &&
      !absl::SimpleAtoi(ToAbsl(f.credits_given_back), &e.credits_given_back)) {
    return absl::InvalidArgumentError("the credits given back (gc) are not a count");
  }
  if (absl::Status s = ReadTopupFields(f, e); !s.ok()) return s;
  absl::StatusOr<engine::UsageFacts> facts = DecodeFacts(f.facts);
  if (!facts.ok()) return facts.status();
  e.facts = std::move(*facts);
  if (f.kind.empty()) return e;
  absl::StatusOr<engine::LeaseChange> lease =
      DecodeLeaseChange(tenant, f.kind, f.id, f.record, f.event);
  if (!lease.ok()) return lease.status();
  e.lease = std::move(*lease);
  return e;
}

bool IsErrorReply(ReplyView r, std::string_view prefix) {
  return r.is_error() && absl::StartsWith(ToAbsl(r.str()), ToAbsl(prefix));
}

}  // namespace

std::string FactsStreamKey(absl::string_view tenant_id) {
  return absl::StrCat("{", tenant_id, "}:f");
}

RedisFactsStream::RedisFactsStream(RedisClientOptions client, std::string consumer)
    : client_(std::move(client)), consumer_(std::move(consumer)) {}

std::string RedisFactsStream::UniqueConsumerName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device random;
  return absl::StrCat(host, ":", getpid(), ":", random());
}

absl::StatusOr<RedisConnection*> RedisFactsStream::Connection() {
  if (conn_ && !conn_->broken()) return &*conn_;
  absl::StatusOr<RedisConnection> c = RedisConnection::Connect(client_);
  if (!c.ok()) return c.status();
  conn_.emplace(std::move(*c));
  return &*conn_;
}

absl::StatusOr<RedisReply> RedisFactsStream::Call(std::span<const std::string_view> argv) {
  absl::StatusOr<RedisConnection*> c = Connection();
  if (!c.ok()) return c.status();
  absl::StatusOr<RedisReply> reply = (*c)->Command(argv);
  if (!reply.ok()) return reply.status();
  if (IsErrorReply(**reply, "NOGROUP")) grouped_.clear();  // Redis lost its data
  if ((*reply)->is_error()) return ErrorReplyStatus(**reply);
  return reply;
}

absl::Status RedisFactsStream::RunPipeline(std::span<const std::vector<std::string_view>> commands,
                                           std::string_view harmless) {
  absl::StatusOr<RedisConnection*> c = Connection();
  if (!c.ok()) return c.status();
  absl::StatusOr<std::vector<RedisReply>> replies = (*c)->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  for (const RedisReply& r : *replies) {
    if (!r->is_error()) continue;
    if (!harmless.empty() && IsErrorReply(*r, harmless)) continue;
    return ErrorReplyStatus(*r);
  }
  return absl::OkStatus();
}

absl::Status RedisFactsStream::EnsureGroups(std::span<const std::string> tenants) {
  std::vector<std::string> keys;
  for (const std::string& t : tenants) {
    if (!grouped_.contains(t)) keys.push_back(FactsStreamKey(t));
  }
  if (keys.empty()) return absl::OkStatus();
  std::vector<std::vector<std::string_view>> commands;
  for (const std::string& k : keys) {
    commands.push_back({"XGROUP", "CREATE", k, kGroup, "0", "MKSTREAM"});
  }
  if (absl::Status s = RunPipeline(commands, "BUSYGROUP"); !s.ok()) return s;
  grouped_.insert(tenants.begin(), tenants.end());
  return absl::OkStatus();
}

std::vector<engine::FactsEntry> RedisFactsStream::EntriesOf(const std::string& tenant,
                                                            ReplyView entries) {
  std::vector<engine::FactsEntry> out;
  std::vector<engine::FactsEntry> unreadable;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].is_nil()) continue;  // deleted while pending
    absl::StatusOr<engine::FactsEntry> e = EntryOf(tenant, entries[i]);
    if (e.ok()) {
      out.push_back(std::move(*e));
      continue;
    }
    std::cerr << "quotum: dropping unreadable facts entry " << entries[i][0].str() << " of tenant "
              << tenant << ": " << e.status().message() << std::endl;
    engine::FactsEntry drop;
    drop.tenant_id = tenant;
    drop.stream_id = std::string(entries[i][0].str());
    unreadable.push_back(std::move(drop));
  }
  if (!unreadable.empty()) Acknowledge(unreadable).IgnoreError();
  return out;
}

absl::StatusOr<std::vector<engine::FactsEntry>> RedisFactsStream::ReadNew(
    std::span<const std::string> tenants, size_t max) {
  if (tenants.empty()) return std::vector<engine::FactsEntry>{};
  if (absl::Status s = EnsureGroups(tenants); !s.ok()) return s;
  std::vector<std::string> keys;
  absl::flat_hash_map<std::string, const std::string*> tenant_of;
  for (const std::string& t : tenants) {
    keys.push_back(FactsStreamKey(t));
    tenant_of[keys.back()] = &t;
  }
  const std::string count = absl::StrCat(max);
  std::vector<std::string_view> argv{"XREADGROUP", "GROUP", kGroup,   consumer_,
                                     "COUNT",      count,   "STREAMS"};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), keys.size(), ">");
  absl::StatusOr<RedisReply> reply = Call(argv);
  if (!reply.ok() && grouped_.empty()) {
    // NOGROUP: Redis lost the streams' groups (restarted empty): make them again.
    if (absl::Status s = EnsureGroups(tenants); !s.ok()) return s;
    reply = Call(argv);
  }
  if (!reply.ok()) return reply.status();
  std::vector<engine::FactsEntry> out;
  for (size_t i = 0; i < (*reply)->size(); ++i) {  // nil (nothing new): size 0
    const ReplyView stream = (**reply)[i];
    auto it = stream.size() == 2 ? tenant_of.find(std::string(stream[0].str())) : tenant_of.end();
    if (it == tenant_of.end()) return absl::InternalError("XREADGROUP answered an unasked stream");
    for (engine::FactsEntry& e : EntriesOf(*it->second, stream[1])) out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<engine::FactsEntry>> RedisFactsStream::ClaimStale(
    const std::string& tenant, absl::Duration min_idle, size_t max) {
  if (absl::Status s = EnsureGroups({&tenant, 1}); !s.ok()) return s;
  const std::string key = FactsStreamKey(tenant);
  const std::string idle = absl::StrCat(absl::ToInt64Milliseconds(min_idle));
  const std::string count = absl::StrCat(max);
  const std::string_view argv[] = {"XAUTOCLAIM", key,   kGroup,  consumer_,
                                   idle,         "0-0", "COUNT", count};
  absl::StatusOr<RedisReply> reply = Call(argv);
  if (!reply.ok()) return reply.status();
  if ((*reply)->size() < 2) return absl::InternalError("XAUTOCLAIM answered short");
  return EntriesOf(tenant, (**reply)[1]);
}

absl::Status RedisFactsStream::Acknowledge(std::span<const engine::FactsEntry> entries) {
  absl::flat_hash_map<std::string_view, std::vector<std::string_view>> ids;
  for (const engine::FactsEntry& e : entries) ids[e.tenant_id].push_back(e.stream_id);
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  std::vector<std::vector<std::string_view>> commands;
  for (const auto& [tenant, stream_ids] : ids) {
    keys.push_back(FactsStreamKey(ToAbsl(tenant)));
    std::vector<std::string_view> ack{"XACK", keys.back(), kGroup};
    std::vector<std::string_view> del{"XDEL", keys.back()};
    ack.insert(ack.end(), stream_ids.begin(), stream_ids.end());
    del.insert(del.end(), stream_ids.begin(), stream_ids.end());
    commands.push_back(std::move(ack));
    commands.push_back(std::move(del));
  }
  if (commands.empty()) return absl::OkStatus();
  return RunPipeline(commands, "");
}

}  // namespace quotum::store::redis
