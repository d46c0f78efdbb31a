#include "quotum/engine/usage_facts.h"

#include "quotum/core/catalog.h"

namespace quotum::engine {

void AppendRows(const FactsEntry& e, CommitBatch& b) {
  const UsageFacts& f = e.facts;
  if (e.charged > 0) {
    b.usage.push_back(UsageDelta{e.tenant_id, f.meter, f.channel, f.period_start, f.at, e.charged});
  }
  if (e.api_call) {
    b.usage.push_back(
        UsageDelta{e.tenant_id, std::string(meters::kApiCalls), "", f.period_start, f.now, 1});
  }
  if (f.message && e.allowed && e.charged == f.quantity) b.messages.push_back(*f.message);
}

}  // namespace quotum::engine
