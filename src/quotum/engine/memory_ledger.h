// The embedded Ledger: a tenant's counters, windows, warm-up counts and
// idempotency keys in process memory, changed under the tenant's lock. What
// it charges is persisted afterwards by the engine's group commit, which takes
// the charge back if the commit fails.
#pragma once

#include <cstdint>
#include <tuple>

#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "quotum/engine/ledger.h"
#include "quotum/engine/tenant_state.h"

namespace quotum::engine {

/// Short-window rules decided against a tenant's windows but not yet charged.
struct RatePass {
  RateOutcomes outcomes;
  /// (category, subject, next state) for every rule to charge; subjects view
  /// the checks' strings.
  absl::InlinedVector<std::tuple<ratelimit::Category, absl::string_view, ratelimit::State>, 2>
      updates;
  int refused = -1;  ///< index of the first non-shadow denial
  /// Bit i: outcome i refused, but its rule is in shadow mode.
  uint32_t shadow_bits = 0;
  /// The names of those rules, in order.
  std::vector<std::string> shadow_denied;
};

/// Decides `checks` against t's windows at `now`, charging none.
RatePass DecideRates(TenantState& t, absl::Span<const RateCheck> checks, absl::Time now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);
/// Stores the next state of every rule `pass` admitted.
void ApplyRates(TenantState& t, const RatePass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.mu);

/// Bound to one tenant (and the session a send goes through) for one call;
/// the caller holds `tenant.mu` for the ledger's whole life. Cheap to make.
class MemoryLedger final : public Ledger {
 public:
  struct Options {
    MeterId api_calls_meter = 0;
    absl::Duration idempotency_ttl = absl::Hours(24);
  };
  /// `session` is the working session p.warmup counts for (null if none).
  MemoryLedger(TenantState& tenant, SessionState* session, Options options)
      : t_(tenant), session_(session), opts_(options) {}

  absl::StatusOr<LedgerResult> Execute(const CheckProgram& p,
                                       absl::Time now) override ABSL_NO_THREAD_SAFETY_ANALYSIS;
  absl::StatusOr<LedgerResult> Replay(const CheckProgram& p,
                                      absl::Time now) override ABSL_NO_THREAD_SAFETY_ANALYSIS;

 private:
  uint64_t WarmupUsed(const CheckProgram& p) const;
  /// Fills v's tier fields from the session's tier at `now` (due step ups
  /// applied); nothing without p.tier or a session.
  void FindTier(const CheckProgram& p, absl::Time now, Verdicts& v);
  /// Records the recipients of the units an applied decision charged, and
  /// marks the tier qualified for its next step once they reach it.
  void RecordTier(const CheckProgram& p, LedgerResult& r);
  /// Gives back expired reservations and fills v's held units (and p.hold's
  /// reservation); false when p.hold commits or releases one not held, or
  /// reserves one held already.
  bool FindHold(const CheckProgram& p, absl::Time now, Verdicts& v) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  /// Holds or frees p.hold's units once decision `d` is allowed.
  void ApplyHold(const CheckProgram& p, const Decision& d) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  /// Charges an applied (non-dry) decision: see Ledger::Execute.
  void Charge(const CheckProgram& p, const RatePass& pass, LedgerResult& r,
              absl::Time now) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void SweepIdempotency(absl::Time now) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  /// Unused units at `now` of the tenant's top-ups named by `grants`.
  uint64_t TopupLeft(const TopupGrants& grants,
                     absl::Time now) const ABSL_NO_THREAD_SAFETY_ANALYSIS;
  /// Draws `units` from `grants` in order (unexpired, unused units first),
  /// recording each draw in v.topup_draws.
  void DrawTopups(const TopupGrants& grants, uint64_t units, absl::Time now,
                  Verdicts& v) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  TenantState& t_;
  SessionState* session_;
  Options opts_;
};

}  // namespace quotum::engine
