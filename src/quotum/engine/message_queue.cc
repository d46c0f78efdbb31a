// Engine: the message queue (SPEC §2 "Deferred delivery"). Scheduled sends
// and sends held at the limit are stored as queued messages before the 202
// leaves; the releaser (message_releaser.h) takes them in queue order and
// releases each through ReleaseMessage, a send decision like any other, so a
// release never over-admits next to live sends.
//
// A message's life: queued -> releasing (claimed) -> released (charged)
// -> sent (handed to the provider), or back to queued when the decision
// refuses it; queued -> cancelled; -> failed when it can never go (its
// session deleted, the provider refusing it or failing past its attempts).
#include <condition_variable>
#include <future>
#include <random>

#include "absl/strings/str_cat.h"
#include "quotum/core/retry_policy.h"
#include "quotum/engine/api_keys.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {

constexpr char kQueued[] = "queued";
constexpr char kReleasing[] = "releasing";
constexpr char kReleased[] = "released";
// A session that is not working is looked at again after this.
constexpr absl::Duration kIdleSessionRecheck = absl::Seconds(5);

absl::Status MessageNotFound(absl::string_view id) {
  return Error(absl::StatusCode::kNotFound, "message_not_found",
               absl::StrCat("No message \"", id, "\"."));
}

// Message `id` of `tenant_id` from status `from` to `to`, at `at`.
MessageTransition Move(std::string tenant_id, std::string id, std::string from, std::string to,
                       std::string reason, absl::Time at) {
  MessageTransition t;
  t.tenant_id = std::move(tenant_id);
  t.id = std::move(id);
  t.from = std::move(from);
  t.to = std::move(to);
  t.reason = std::move(reason);
  t.at = at;
  return t;
}

// Why a refused release waits (its reason while queued again).
std::string RefusalReason(const Decision& d) {
  if (d.reason == DenyReason::kQuotaExceeded) return "quota_exceeded";
  if (d.reason == DenyReason::kWarmupLimit) return "warmup_limit";
  if (d.reason == DenyReason::kTierLimit) return "tier_limit";
  return "rate_limited";
}

bool SessionGone(const absl::Status& s) { return MachineCode(s) == "session_not_found"; }
bool SessionIdle(const absl::Status& s) { return MachineCode(s) == "session_not_working"; }

}  // namespace

absl::StatusOr<MessageRecord> Engine::HeldMessage(const Principal& who, HeldSend send) {
  const Catalog& cat = *opts_.catalog;
  if (!send.channel.empty() && !cat.HasChannel(send.channel)) {
    return Unprocessable("unknown_channel",
                         absl::StrCat("Unknown channel \"", send.channel, "\"."));
  }
  TenantState& t = *who.tenant;
  auto known = [&] {
    MutexLock lock(&t.mu);
    return t.Leases().sessions.contains(send.session_id);
  };
  if (!known() && opts_.shared_ledger) {
    // This instance's view of the sessions may be old: look again.
    if (absl::Status s = SharedSessions(who).status(); !s.ok()) return s;
  }
  if (!known()) {
    return Error(absl::StatusCode::kNotFound, "session_not_found",
                 absl::StrCat("No session \"", send.session_id, "\"."));
  }
  const absl::Time now = absl::FromUnixMillis(absl::ToUnixMillis(clock_->Now()));
  MessageRecord m;
  m.id = send.id.empty() ? absl::StrCat("msg_", RandomHex(12)) : std::move(send.id);
  m.tenant_id = t.id;
  m.channel = send.channel.empty() ? cat.channels.front() : std::move(send.channel);
  m.to = std::move(send.to);
  m.text = std::move(send.text);
  m.status = kQueued;
  m.created_at = now;
  m.session_id = std::move(send.session_id);
  m.type = std::string(MessageTypeName(send.type));
  m.send_at = send.send_at;
  m.due_at = send.send_at ? std::max(*send.send_at, now) : now;
  m.reason = std::move(send.reason);
  m.updated_at = now;
  return m;
}

void Engine::QueueMessages(const Principal& who, std::vector<MessageRecord> messages,
                           Callback<std::vector<MessageRecord>> done) {
  for (size_t i = 0; i < messages.size(); ++i) messages[i].seq = static_cast<uint32_t>(i);
  auto shared = std::make_shared<std::vector<MessageRecord>>(std::move(messages));
  CommitQueue::Done finish = [shared, done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok()) return done(s);
    done(std::move(*shared));
  };
  const bool queued = queue_.Enqueue(
      [&](CommitBatch& b) {
        for (const MessageRecord& m : *shared) b.messages.push_back(m);
      },
      finish);
  if (!queued) finish(ShuttingDown());
}

bool Engine::QueuesAtLimit(const Principal& who, const Decision& d) const {
  if (d.allowed) return false;
  // A tier refusal queues by the send's own meter's policy.
  if (d.reason != DenyReason::kQuotaExceeded && d.reason != DenyReason::kTierLimit) return false;
  const std::optional<MeterId> m = d.reason == DenyReason::kTierLimit
                                       ? std::optional<MeterId>(messages_sent_meter_)
                                       : opts_.catalog->FindMeter(d.rule);
  if (!m || (*m != messages_sent_meter_ && *m != credits_meter_)) return false;
  TenantState& t = *who.tenant;
  MutexLock lock(&t.mu);
  return t.plan->on_limit[*m] == OnLimit::kQueue;
}

void Engine::CancelMessage(const Principal& who, std::string id, Callback<MessageRecord> done) {
  CommitBatch b;
  b.message_transitions.push_back(
      Move(who.tenant->id, id, kQueued, "cancelled", "cancelled", clock_->Now()));
  CommitQueue::Done finish = [this, who, id,
                              done = std::move(done)](const absl::Status& s) mutable {
    if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition) {
      return done(StoreUnavailable("The message queue"));
    }
    absl::StatusOr<MessageRecord> m = FindMessage(who, id);
    if (!m.ok() || s.ok()) return done(std::move(m));
    done(Error(absl::StatusCode::kAborted, "message_not_queued",
               absl::StrCat("Message \"", id, "\" is ", m->status,
                            "; only a queued message can be cancelled.")));
  };
  if (!queue_.CommitAlone(std::move(b), finish)) finish(ShuttingDown());
}

absl::StatusOr<MessagePage> Engine::ListMessages(const Principal& who, const std::string& status,
                                                 const std::optional<MessageCursor>& after,
                                                 size_t limit) {
  auto rows = store_->Messages(who.tenant->id, status, after, limit + 1);
  if (!rows.ok()) return StoreUnavailable("Messages");
  MessagePage page;
  page.messages = std::move(*rows);
  if (page.messages.size() > limit) {
    page.messages.resize(limit);
    page.next = MessageCursor{page.messages.back().created_at, page.messages.back().id};
  }
  return page;
}

absl::StatusOr<bool> Engine::TransitionMessage(MessageTransition change) {
  CommitBatch b;
  b.message_transitions.push_back(std::move(change));
  absl::Status s = CommitDrained(std::move(b));
  if (s.code() == absl::StatusCode::kFailedPrecondition) return false;
  if (!s.ok()) return s;
  return true;
}

absl::StatusOr<Decision> Engine::DecideRelease(TenantState& t, const MessageRecord& m, bool dry_run,
                                               absl::Time now) {
  MeterRequest req;
  req.meter = meters::kMessagesSent;
  req.quantity = 1;
  req.channel = m.channel;
  req.type = ParseMessageType(m.type).value_or(MessageType::kText);
  req.session_id = m.session_id;
  req.count_api_call = false;
  req.dry_run = dry_run;
  req.paced_later = true;
  req.no_fail_open = true;  // held past a limit: never admitted unchecked
  {
    // A dry run names the message too, so that its tier is judged; it
    // writes nothing.
    if (!dry_run) {
      req.idempotency_key = absl::StrCat("release:", m.id, ":", m.release_attempts);
      req.operation = absl::StrCat("messages.release|", m.id);
    }
    MessageRecord released = m;
    released.status = kReleased;
    released.reason.clear();
    released.released_at = now;
    released.due_at = now;  // its hand-off is due at once
    released.updated_at = now;
    released.paced = false;
    req.messages.push_back(std::move(released));
  }
  std::promise<absl::StatusOr<Decision>> decided;
  std::future<absl::StatusOr<Decision>> result = decided.get_future();
  Consume(Principal{&t, "", {}}, std::move(req),
          [&decided](absl::StatusOr<Decision> d) { decided.set_value(std::move(d)); });
  return result.get();
}

ReleaseOutcome Engine::RefusedRelease(const Decision& d) {
  if (d.reason == DenyReason::kQuotaExceeded) return {ReleaseOutcome::Kind::kNoCapacity, {}};
  return {ReleaseOutcome::Kind::kSessionWaits, absl::Nanoseconds(std::max<int64_t>(d.retry_ns, 0))};
}

absl::StatusOr<ReleaseOutcome> Engine::ReleaseMessage(const MessageRecord& m, bool hand_off) {
  // Scale-out: a tenant made through another instance is read from the store.
  absl::StatusOr<TenantState*> found = FindOrAdoptTenant(m.tenant_id);
  if (!found.ok()) return found.status();
  TenantState* t = *found;
  if (!t) return MessageNotFound(m.id);
  if (m.status == kReleased) return HandOff(*t, m);
  // The instant of the release's charge: its hour and day, and the message's released_at.
  const absl::Time now = absl::FromUnixMillis(absl::ToUnixMillis(clock_->Now()));
  absl::StatusOr<ReleaseOutcome> admitted = AdmitQueued(*t, m, now);
  if (!admitted.ok() || admitted->kind != ReleaseOutcome::Kind::kReleased) return admitted;
  if (!hand_off) return admitted;
  MessageRecord released = m;
  released.status = kReleased;
  released.paced = false;
  released.released_at = now;
  return HandOff(*t, released);
}

absl::StatusOr<ReleaseOutcome> Engine::HandOff(TenantState& t, const MessageRecord& m) {
  absl::StatusOr<std::optional<ReleaseOutcome>> finished = FinishGivenBack(m);
  if (!finished.ok()) return finished.status();
  if (*finished) return **finished;
  if (!m.paced) {
    absl::StatusOr<Decision> pace = PaceHandOff(t, m.session_id);
    if (!pace.ok()) return pace.status();
    if (!pace->allowed) {
      return ReleaseOutcome{ReleaseOutcome::Kind::kHandOffPaced,
                            absl::Nanoseconds(std::max<int64_t>(pace->retry_ns, 0))};
    }
  }
  DeliveryAnswer answer;
  answer.delivered = true;  // the log provider: accepted, so sent
  if (opts_.delivery) answer = opts_.delivery->Deliver(m);
  const absl::Time now = clock_->Now();
  auto [next, outcome] = AfterHandOff(m, answer, now);
  stats_.deliveries.Add({std::string(provider_name()), next.to == "sent"      ? "sent"
                                                       : next.to == kReleased ? "retry"
                                                                              : "failed"});
  // A refusal (no retry) means the upstream did not send it.
  absl::StatusOr<bool> moved = next.to == "failed"
                                   ? FailReleased(t, m, std::move(next), !answer.retryable)
                                   : TransitionMessage(std::move(next));
  if (!moved.ok()) return moved.status();
  if (!*moved) return ReleaseOutcome{ReleaseOutcome::Kind::kGone, {}};
  return outcome;
}

std::pair<MessageTransition, ReleaseOutcome> Engine::AfterHandOff(const MessageRecord& m,
                                                                  const DeliveryAnswer& a,
                                                                  absl::Time now) const {
  MessageTransition next = Move(m.tenant_id, m.id, kReleased, "sent", "", now);
  if (a.delivered) {
    next.sent_at = now;
    return {std::move(next), ReleaseOutcome{ReleaseOutcome::Kind::kSent, {}}};
  }
  next.count_delivery = true;
  next.reason = a.error.substr(0, 300);
  const DeliveryPolicy& policy = opts_.delivery_policy;
  if (!a.retryable || static_cast<int>(m.delivery_attempts) + 1 >= policy.max_attempts) {
    next.to = "failed";  // its charge is given back only as [delivery] give_back says
    return {std::move(next), ReleaseOutcome{ReleaseOutcome::Kind::kFailed, {}}};
  }
  thread_local std::mt19937_64 random{std::random_device{}()};
  absl::Duration wait = RetryDelay(static_cast<int>(m.delivery_attempts) + 1, policy.retry_base,
                                   policy.retry_cap, random());
  if (a.retry_after) wait = std::max(wait, std::min(*a.retry_after, absl::Hours(1)));
  next.to = kReleased;
  next.due_at = now + wait;
  // The session's hand-offs wait with it (the upstream is failing).
  return {std::move(next), ReleaseOutcome{ReleaseOutcome::Kind::kHandOffPaced, wait}};
}

absl::StatusOr<ReleaseOutcome> Engine::FailMessage(const MessageRecord& m,
                                                   const absl::Status& why) {
  for (const char* from : {kQueued, kReleasing, kReleased}) {
    MessageTransition failed =
        Move(m.tenant_id, m.id, from, "failed", std::string(MachineCode(why)), clock_->Now());
    TenantState* t =
        from == kReleased && m.status == kReleased ? FindTenantShared(m.tenant_id) : nullptr;
    // Only a released message was charged. Whether it reached anyone is not
    // known here (the error may have come after a hand-off): only "always"
    // gives it back.
    absl::StatusOr<bool> moved =
        t ? FailReleased(*t, m, std::move(failed), false) : TransitionMessage(std::move(failed));
    if (!moved.ok()) return moved.status();
    if (*moved) return ReleaseOutcome{ReleaseOutcome::Kind::kFailed, {}};
  }
  return ReleaseOutcome{ReleaseOutcome::Kind::kGone, {}};
}

absl::StatusOr<Decision> Engine::PaceHandOff(TenantState& t, const std::string& session_id) {
  const absl::Time now = clock_->Now();
  const Principal who{&t, "", {}};
  if (!opts_.shared_ledger) {
    MutexLock lock(&t.mu);
    Touch(t, now);
    RatePass pass = EvaluateRates(t, who, {{ratelimit::Category::kMessages, session_id}}, now);
    if (pass.refused >= 0) return RateDenial(pass);
    ApplyRates(t, pass);
    Decision d;
    d.allowed = true;
    d.rates = std::move(pass.outcomes);
    return d;
  }
  CheckProgram p;
  p.tenant_id = t.id;
  p.count_api_call = false;
  {
    MutexLock lock(&t.mu);
    Touch(t, now);
    p.rates.push_back(CompileRate(opts_.rate_rules[ratelimit::Category::kMessages], *t.profile, {},
                                  ratelimit::Category::kMessages, session_id, 1));
    // No quota: zero units of api_calls, unlimited.
    p.quota.meter = api_calls_meter_;
    p.quota.meter_name = meters::kApiCalls;
    p.quota.period = t.period;
  }
  absl::StatusOr<LedgerResult> x = ExecuteShared(t, p, now);
  if (!x.ok()) return x.status();
  return std::move(x->decision);
}

absl::StatusOr<ReleaseOutcome> Engine::AdmitQueued(TenantState& t, const MessageRecord& m,
                                                   absl::Time now) {
  auto fail = [&](const std::string& from,
                  const absl::Status& why) -> absl::StatusOr<ReleaseOutcome> {
    absl::StatusOr<bool> moved = TransitionMessage(
        Move(m.tenant_id, m.id, from, "failed", std::string(MachineCode(why)), now));
    if (!moved.ok()) return moved.status();
    return ReleaseOutcome{ReleaseOutcome::Kind::kFailed, {}};
  };
  if (m.status == kQueued) {
    // A dry run first: a tenant waiting for capacity costs no claim, and no
    // refusal is remembered under the release's idempotency key.
    absl::StatusOr<Decision> check = DecideRelease(t, m, true, now);
    if (!check.ok() && SessionGone(check.status())) return fail(kQueued, check.status());
    if (!check.ok() && SessionIdle(check.status())) {
      return ReleaseOutcome{ReleaseOutcome::Kind::kSessionWaits, kIdleSessionRecheck};
    }
    if (!check.ok()) return check.status();
    if (!check->allowed) return RefusedRelease(*check);
    absl::StatusOr<bool> claimed =
        TransitionMessage(Move(m.tenant_id, m.id, kQueued, kReleasing, "", now));
    if (!claimed.ok()) return claimed.status();
    if (!*claimed) return ReleaseOutcome{ReleaseOutcome::Kind::kGone, {}};
  }
  absl::StatusOr<Decision> charged = DecideRelease(t, m, false, now);
  if (!charged.ok() && SessionGone(charged.status())) return fail(kReleasing, charged.status());
  if (!charged.ok() || !charged->allowed) {
    // Back in the queue. A refusal is remembered under this attempt's key,
    // so the next attempt takes a new one; an error may have charged in a
    // ledger that did not answer, so the same key is asked again.
    const bool refused = charged.ok();
    MessageTransition requeue =
        Move(m.tenant_id, m.id, kReleasing, kQueued,
             refused ? RefusalReason(*charged) : std::string(MachineCode(charged.status())), now);
    requeue.count_attempt = refused;
    absl::StatusOr<bool> back = TransitionMessage(std::move(requeue));
    if (!back.ok()) return back.status();
    if (!refused && SessionIdle(charged.status())) {
      return ReleaseOutcome{ReleaseOutcome::Kind::kSessionWaits, kIdleSessionRecheck};
    }
    if (!refused) return charged.status();
    return RefusedRelease(*charged);
  }
  if (charged->replayed || opts_.shared_ledger) {
    // Marked released in the store before its hand-off. Embedded, the
    // charge's commit did it (this finds it done). Scale-out, the facts
    // drain writes the charge's row only moments later, and a hand-off
    // whose `sent` mark found the row still releasing would be handed over
    // again; the drain's late write then changes nothing (only queued or
    // releasing rows take it).
    MessageTransition released = Move(m.tenant_id, m.id, kReleasing, kReleased, "", now);
    // A replay's charge was made earlier (the drain writes its instant).
    if (!charged->replayed) released.released_at = now;
    absl::StatusOr<bool> s = TransitionMessage(std::move(released));
    if (!s.ok()) return s.status();
  }
  stats_.queue_releases.Add({});
  return ReleaseOutcome{ReleaseOutcome::Kind::kReleased, {}};
}

}  // namespace quotum::engine
