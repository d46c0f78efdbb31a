// The parts of a Decision that a store keeps in one text column of its
// idempotency record (`extra`), so that a replay after a restart answers
// with them too: the credits a send cost, what a reservation operation did,
// and where a send stood against its session's messaging tier.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "quotum/engine/decision.h"

namespace quotum::engine {

/// d.credits and d.reservation as text; empty when d has neither.
std::string EncodeDecisionExtras(const Decision& d);

/// Sets d.credits and d.reservation from `text` (EncodeDecisionExtras');
/// a part it cannot read is left unset.
void DecodeDecisionExtras(absl::string_view text, Decision& d);

}  // namespace quotum::engine
