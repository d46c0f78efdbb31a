// Billing-period maths: random anchors (raw instants, or RFC 3339 text as a
// tenant's subscription_start arrives), intervals and instants. Checks that
// the period found contains the instant, matches PeriodStart, is followed by
// the next one without a gap, and has the interval's length.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "quotum/core/billing_period.h"

namespace {

using quotum::BillingInterval;
using quotum::BillingPeriod;

// Fixed-width values from the front of the input (zeros once it runs out).
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T Take() {
    T v{};
    const size_t n = std::min(sizeof v, size_);
    std::memcpy(&v, data_, n);
    data_ += n;
    size_ -= n;
    return v;
  }
  absl::string_view Rest() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  const uint8_t* data_;
  size_t size_;
};

void Check(bool ok, const char* what, absl::Time anchor, absl::Time t) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: %s (anchor %s, t %s)\n", what,
               absl::FormatTime(absl::RFC3339_full, anchor, absl::UTCTimeZone()).c_str(),
               absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone()).c_str());
  std::abort();
}

// The instants ParseRfc3339 accepts: years 0001 to 9999, UTC.
const absl::Time kFirst = absl::FromCivil(absl::CivilDay(1, 1, 1), absl::UTCTimeZone());
const absl::Time kEnd = absl::FromCivil(absl::CivilDay(10000, 1, 1), absl::UTCTimeZone());

bool Finite(const BillingPeriod& p) {
  return p.start != absl::InfinitePast() && p.start != absl::InfiniteFuture() &&
         p.end != absl::InfinitePast() && p.end != absl::InfiniteFuture();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in(data, size);
  const uint8_t mode = in.Take<uint8_t>();
  const uint16_t days = in.Take<uint16_t>();
  const int64_t anchor_seconds = in.Take<int64_t>();
  const int64_t t_seconds = in.Take<int64_t>();
  const uint32_t t_nanos = in.Take<uint32_t>() % 1'000'000'000;

  // Intervals as ParseBillingInterval makes them.
  const std::string interval_text = (mode & 1) ? "month" : absl::StrCat(days, "d");
  auto interval =
      quotum::ParseBillingInterval(interval_text, (mode & 2) ? "calendar" : "subscription");
  if (!interval.ok()) return 0;

  // The anchor: RFC 3339 text (the rest of the input) or any whole second,
  // truncated to seconds either way as Engine::CreateTenant stores it.
  absl::Time anchor = absl::FromUnixSeconds(anchor_seconds);
  if (mode & 4) {
    auto parsed = quotum::ParseRfc3339(in.Rest());
    if (!parsed.ok()) return 0;
    anchor = absl::FromUnixSeconds(absl::ToUnixSeconds(*parsed));
    // Formatting then parsing a whole-second instant gives it back.
    auto again = quotum::ParseRfc3339(quotum::FormatRfc3339(anchor));
    Check(again.ok() && *again == anchor, "FormatRfc3339 does not round-trip", anchor, anchor);
  }
  // The instant: a wall-clock time (1970-2100, as a server's clock reads) or
  // any instant at all, where only the absence of UB and hangs is checked
  // unless the period found is finite.
  absl::Time t = absl::FromUnixSeconds(t_seconds) + absl::Nanoseconds(t_nanos);
  const bool wall_clock = (mode & 8) != 0;
  if (wall_clock) {
    constexpr int64_t k2100 = 4'102'444'800;
    t = absl::FromUnixSeconds(static_cast<int64_t>(static_cast<uint64_t>(t_seconds) % k2100)) +
        absl::Nanoseconds(t_nanos);
  }

  // What production sees: an anchor ParseRfc3339 accepts and a wall-clock
  // instant. There the period must be finite; elsewhere it may saturate.
  const bool realistic = wall_clock && anchor >= kFirst && anchor < kEnd;

  const BillingPeriod p = quotum::PeriodAt(anchor, *interval, t);
  (void)p.Label();
  if (!Finite(p)) {
    Check(!realistic, "no finite period for a real anchor and a wall-clock instant", anchor, t);
    return 0;
  }
  Check(p.Contains(t), "period does not contain the instant", anchor, t);
  Check(p.start == quotum::PeriodStart(anchor, *interval, p.index), "start != PeriodStart(index)",
        anchor, t);
  Check(p.end == quotum::PeriodStart(anchor, *interval, p.index + 1),
        "end != PeriodStart(index + 1)", anchor, t);
  const absl::Duration len = p.end - p.start;
  if (interval->unit == BillingInterval::Unit::kDays) {
    Check(len == absl::Hours(24) * interval->days, "day period of the wrong length", anchor, t);
  } else {
    Check(len >= absl::Hours(24 * 28) && len <= absl::Hours(24 * 31),
          "month period not 28-31 days long", anchor, t);
  }
  const BillingPeriod next = quotum::PeriodAt(anchor, *interval, p.end);
  if (Finite(next)) {
    Check(next.start == p.end && next.index == p.index + 1, "periods not contiguous", anchor, t);
  }
  const BillingPeriod first = quotum::PeriodAt(anchor, *interval, anchor);
  if (Finite(first)) Check(first.index == 0, "the anchor is not in period 0", anchor, anchor);
  return 0;
}
