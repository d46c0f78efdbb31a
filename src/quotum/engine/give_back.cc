// Engine: a failed message's charge given back ([delivery] give_back; SPEC §2
// "Delivery provider"; docs/api.md "Delivery"). A released message was
// charged one messages_sent unit (and its credits, on a plan that sells
// messages by credits). When it fails and the policy says so, those units
// are taken back out of the period's counter and out of the hour and day
// they were counted in, exactly once, in the same step as the failed mark:
//   - embedded: one store commit holds both, then memory follows;
//   - scale-out: the shared ledger gives back once per message id (a mark in
//     Redis), then the cold store takes the failed mark. A hand-off that
//     finds the mark without the failed mark finishes the failure instead of
//     sending (FinishGivenBack).
// A message charged in an earlier period keeps its charge: that period is over.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "quotum/engine/engine.h"
#include "quotum/engine/errors.h"

namespace quotum::engine {
namespace {

bool PolicyGivesBack(GiveBackPolicy policy, bool surely_unsent) {
  switch (policy) {
    case GiveBackPolicy::kNever:
      return false;
    case GiveBackPolicy::kRefused:
      return surely_unsent;
    case GiveBackPolicy::kAlways:
      return true;
  }
  return false;
}

// Lowers `counter` by `units`, never below 0; what it took.
uint64_t TakeOut(uint64_t& counter, uint64_t units) {
  const uint64_t taken = std::min(counter, units);
  counter -= taken;
  return taken;
}

}  // namespace

absl::StatusOr<bool> Engine::FailReleased(TenantState& t, const MessageRecord& m,
                                          MessageTransition to_failed, bool surely_unsent) {
  if (!PolicyGivesBack(opts_.delivery_policy.give_back, surely_unsent)) {
    return TransitionMessage(std::move(to_failed));
  }
  std::optional<GivenBackCharge> charge = ChargeOf(t, m, to_failed.reason, to_failed.at);
  if (!charge) return TransitionMessage(std::move(to_failed));
  absl::StatusOr<bool> moved = opts_.shared_ledger
                                   ? FailGivingBackShared(t, std::move(to_failed), *charge)
                                   : FailGivingBackLocally(t, std::move(to_failed), *charge);
  if (moved.ok() && *moved) stats_.given_back.Add({});
  return moved;
}

std::optional<GivenBackCharge> Engine::ChargeOf(TenantState& t, const MessageRecord& m,
                                                std::string reason, absl::Time now) {
  const Catalog& cat = *opts_.catalog;
  MutexLock lock(&t.mu);
  Touch(t, now);
  const absl::Time charged_at = m.released_at.value_or(m.updated_at);
  if (charged_at < t.period.start) return std::nullopt;
  GivenBackCharge c;
  c.message_id = m.id;
  c.tenant_id = t.id;
  c.meter = std::string(meters::kMessagesSent);
  c.channel = m.channel;
  c.period_start = t.period.start;
  c.period_end = t.period.end;
  c.at = charged_at;
  c.now = now;
  c.units = 1;
  if (LimitOf(*t.plan, &t.overrides, credits_meter_, &cat, &t.addons)) {
    const std::string& channel = cat.ChannelOr(m.channel);
    c.credits = cat.CreditCost(channel, ParseMessageType(m.type).value_or(MessageType::kText));
  }
  c.reason = std::move(reason);
  return c;
}

absl::StatusOr<bool> Engine::FailGivingBackLocally(TenantState& t, MessageTransition to_failed,
                                                   const GivenBackCharge& c) {
  CommitBatch b;
  b.message_transitions.push_back(std::move(to_failed));
  AppendGivenBackRows(c.tenant_id, c.meter, c.channel, c.period_start, c.at, c.units, c.credits,
                      b.given_back);
  // Memory goes down with the commit's submission, under the tenant lock,
  // so no decision sees the units after the commit without them. A
  // reconciliation's absolute counter set queued meanwhile may be written
  // on either side of this commit: the stored counter can then be a unit
  // off until the next repair. Nothing is taken if the period rolled over.
  uint64_t units = 0, credits = 0;
  absl::Status s = AwaitCommit([&](CommitQueue::Done& done) {
    MutexLock lock(&t.mu);
    if (!queue_.CommitAlone(std::move(b), done)) return false;
    if (t.period.start == c.period_start) {
      units = TakeOut(t.used[messages_sent_meter_], c.units);
      credits = TakeOut(t.used[credits_meter_], c.credits);
    }
    return true;
  });
  if (!s.ok()) {
    // Refused (the message had moved on) or failed: memory gets its units back.
    MutexLock lock(&t.mu);
    if (t.period.start == c.period_start) {
      t.used[messages_sent_meter_] += units;
      t.used[credits_meter_] += credits;
    }
  }
  if (s.code() == absl::StatusCode::kFailedPrecondition) return false;
  if (!s.ok()) return s;
  return true;
}

absl::StatusOr<bool> Engine::FailGivingBackShared(TenantState& t, MessageTransition to_failed,
                                                  const GivenBackCharge& c) {
  absl::StatusOr<bool> given = opts_.shared_ledger->GiveBack(c);
  if (given.ok() && !*given) {
    if (absl::Status s = GiveBaseline(t); !s.ok()) return s;
    given = opts_.shared_ledger->GiveBack(c);
  }
  if (!given.ok()) return given.status();  // still released: tried again next round
  if (!*given) {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable",
                 "The counter store lost its baseline again; retry.");
  }
  if (drain_) drain_->Notify(t.id);  // the reports follow within a drain round
  return TransitionMessage(std::move(to_failed));
}

absl::StatusOr<std::optional<ReleaseOutcome>> Engine::FinishGivenBack(const MessageRecord& m) {
  if (!opts_.shared_ledger || opts_.delivery_policy.give_back == GiveBackPolicy::kNever) {
    return std::nullopt;
  }
  absl::StatusOr<std::optional<std::string>> reason =
      opts_.shared_ledger->GivenBackReason(m.tenant_id, m.id);
  if (!reason.ok()) return reason.status();
  if (!*reason) return std::nullopt;
  MessageTransition failed;
  failed.tenant_id = m.tenant_id;
  failed.id = m.id;
  failed.from = m.status;
  failed.to = "failed";
  failed.reason = std::move(**reason);
  failed.at = clock_->Now();
  absl::StatusOr<bool> moved = TransitionMessage(std::move(failed));
  if (!moved.ok()) return moved.status();
  return ReleaseOutcome{*moved ? ReleaseOutcome::Kind::kFailed : ReleaseOutcome::Kind::kGone, {}};
}

}  // namespace quotum::engine
