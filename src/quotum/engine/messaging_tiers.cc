// Messaging tiers on the embedded ledger: the recipients a session's tier
// counts are not written anywhere of their own; they are the released
// messages' (MessageRecord), read again at start-up.
#include <algorithm>

#include "quotum/engine/engine.h"

namespace quotum::engine {

absl::Status Engine::LoadTierRecipients(absl::Time now) {
  const Catalog& cat = *opts_.catalog;
  if (std::none_of(cat.plans.begin(), cat.plans.end(),
                   [](const Plan& p) { return p.messaging_tiers.has_value(); })) {
    return absl::OkStatus();
  }
  return store_->RecentSends(
      now - absl::Milliseconds(kTierEvaluationMs), [&](const MessageRecord& m) {
        TenantState* t = FindTenant(m.tenant_id);
        if (!t || !m.released_at) return;
        MutexLock lock(&t->mu);
        if (!t->plan->messaging_tiers) return;
        const TierPolicy& policy = *t->plan->messaging_tiers;
        const std::optional<MessageType> type = ParseMessageType(m.type);
        if (!type || !policy.types[static_cast<size_t>(*type)] ||
            std::find(policy.channels.begin(), policy.channels.end(), m.channel) ==
                policy.channels.end()) {
          return;
        }
        auto s = t->Leases().sessions.find(m.session_id);
        // A session made again under a deleted one's id starts afresh.
        if (s == t->Leases().sessions.end() || *m.released_at < absl::Time(s->second.created_at)) {
          return;
        }
        RecipientWindow& w = s->second.Tier().window;
        w.Advance(absl::ToUnixMillis(*m.released_at));
        w.Record(m.to);
      });
}

}  // namespace quotum::engine
