// Runs tests/golden/decisions.json against any Ledger: every sequence from
// empty state, every step's CheckProgram at its instant, every expected field
// compared (GoogleTest expectations, traced by sequence and step).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "quotum/engine/ledger.h"

namespace quotum::testing {

/// One ledger with empty state for one sequence. `Execute` runs a step (the
/// memory fixture also plays the engine's part: period rollover, and marking
/// an idempotency key committed once its step is answered).
class LedgerUnderTest {
 public:
  virtual ~LedgerUnderTest() = default;
  virtual absl::StatusOr<engine::LedgerResult> Execute(const engine::CheckProgram& p,
                                                       absl::Time now) = 0;
};

/// Makes a fresh ledger for the sequence named `sequence` (a unique tenant id
/// is a good idea for a shared store).
using LedgerFactory = std::function<std::unique_ptr<LedgerUnderTest>(const std::string& sequence)>;

/// Runs every vector; returns the number of steps checked.
int RunDecisionVectors(const std::string& golden_path, const LedgerFactory& make);

/// The realistic instant step 0 runs at: aligned to every window and day of the vectors.
absl::Time DecisionVectorBase();

}  // namespace quotum::testing
