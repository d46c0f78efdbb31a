// TOML text -> config::LoadString (the loader behind LoadFile). A config that
// loads must be usable: a default plan that exists, every plan's profile
// known, and billing periods that can be computed for each plan.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "quotum/config/config.h"
#include "quotum/core/billing_period.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: loaded config breaks: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto loaded = quotum::config::LoadString(text, "fuzz.toml");
  if (!loaded.ok()) {
    Check(!loaded.status().message().empty(), "an error without a message");
    return 0;
  }
  const quotum::config::Config& cfg = **loaded;
  const quotum::Catalog& cat = cfg.catalog;
  Check(!cat.plans.empty(), "no plans");
  Check(cat.FindPlan(cfg.default_plan) != nullptr, "default_plan names no plan");
  const absl::Time anchor = absl::FromUnixSeconds(1'794'650'400);  // 2026-11-14T10:00:00Z
  for (const quotum::Plan& plan : cat.plans) {
    Check(cat.FindProfile(plan.rate_limit_profile) != nullptr, "a plan's profile is unknown");
    Check(plan.limits.size() == cat.meter_count(), "a plan's limits do not cover every meter");
    const quotum::BillingPeriod p = quotum::PeriodAt(anchor, plan.interval, anchor);
    Check(p.Contains(anchor), "the first period does not contain its anchor");
  }
  return 0;
}
