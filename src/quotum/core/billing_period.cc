#include "quotum/core/billing_period.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"

namespace quotum {
namespace {

// Beyond these the period's instants saturate to infinity anyway.
constexpr int64_t kMaxPeriodIndex = int64_t{1} << 62;
constexpr int64_t kMinPeriodIndex = -kMaxPeriodIndex;

int DaysInMonth(absl::CivilMonth m) {
  return static_cast<int>(absl::CivilDay(m + 1) - absl::CivilDay(m));
}

// Anchor normalised by the interval's calendar flag.
absl::CivilSecond EffectiveAnchor(absl::Time anchor, const BillingInterval& interval) {
  absl::CivilSecond a = absl::ToCivilSecond(anchor, absl::UTCTimeZone());
  if (!interval.calendar) return a;
  if (interval.unit == BillingInterval::Unit::kMonth) {
    return absl::CivilSecond(absl::CivilMonth(a));
  }
  return absl::CivilSecond(absl::CivilDay(a));
}

absl::Time MonthStart(absl::CivilSecond a, int64_t k) {
  absl::CivilMonth m = absl::CivilMonth(a) + k;
  int day = std::min(a.day(), DaysInMonth(m));
  absl::CivilSecond s(m.year(), m.month(), day, a.hour(), a.minute(), a.second());
  return absl::FromCivil(s, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<BillingInterval> ParseBillingInterval(absl::string_view interval,
                                                     absl::string_view anchor) {
  BillingInterval out;
  if (interval == "month") {
    out.unit = BillingInterval::Unit::kMonth;
  } else if (interval.size() >= 2 && interval.back() == 'd') {
    int days = 0;
    if (!absl::SimpleAtoi(interval.substr(0, interval.size() - 1), &days) || days < 1 ||
        days > 3660) {
      return absl::InvalidArgumentError(absl::StrCat(
          "interval \"", interval, "\" must be \"month\" or \"<N>d\" with 1 <= N <= 3660"));
    }
    out.unit = BillingInterval::Unit::kDays;
    out.days = days;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("interval \"", interval, "\" must be \"month\" or \"<N>d\" (e.g. \"30d\")"));
  }
  if (anchor == "subscription") {
    out.calendar = false;
  } else if (anchor == "calendar") {
    out.calendar = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("anchor \"", anchor, "\" must be \"subscription\" or \"calendar\""));
  }
  return out;
}

absl::Time PeriodStart(absl::Time anchor, const BillingInterval& interval, int64_t k) {
  absl::CivilSecond a = EffectiveAnchor(anchor, interval);
  if (interval.unit == BillingInterval::Unit::kMonth) return MonthStart(a, k);
  return absl::FromCivil(a, absl::UTCTimeZone()) + absl::Hours(24) * interval.days * k;
}

BillingPeriod PeriodAt(absl::Time anchor, const BillingInterval& interval, absl::Time now) {
  absl::CivilSecond a = EffectiveAnchor(anchor, interval);
  absl::Time a_time = absl::FromCivil(a, absl::UTCTimeZone());
  int64_t k = 0;
  if (interval.unit == BillingInterval::Unit::kMonth) {
    absl::CivilMonth n = absl::CivilMonth(absl::ToCivilSecond(now, absl::UTCTimeZone()));
    k = n - absl::CivilMonth(a);
    // The estimate is off by at most one in either direction.
    while (MonthStart(a, k) > now) --k;
    while (MonthStart(a, k + 1) <= now) ++k;
  } else {
    absl::Duration len = absl::Hours(24) * interval.days;
    absl::Duration rem;
    k = absl::IDivDuration(now - a_time, len, &rem);
    // Instants ~2^63 s apart saturate the division; keep k +- 1 representable.
    k = std::clamp(k, kMinPeriodIndex, kMaxPeriodIndex);
    if (a_time + len * k > now) --k;  // IDivDuration truncates towards zero.
  }
  return BillingPeriod{PeriodStart(anchor, interval, k), PeriodStart(anchor, interval, k + 1), k};
}

std::string BillingPeriod::Label() const {
  absl::CivilSecond s = absl::ToCivilSecond(start, absl::UTCTimeZone());
  return absl::StrFormat("%04d-%02d", s.year(), s.month());
}

std::string FormatDate(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

std::string FormatRfc3339(absl::Time t) {
  // Each decision's reply names its period's reset, the same instant for
  // every request of a period: the last one formatted on this thread is kept
  // (formatting through the time-zone library cost about 2% of a consume).
  constexpr const char* kFormat = "%4Y-%m-%dT%H:%M:%SZ";
  thread_local int64_t last_second = 0;
  thread_local std::string last_text;
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) {
    return absl::FormatTime(kFormat, t, absl::UTCTimeZone());
  }
  const int64_t second = absl::ToUnixSeconds(t);  // floors, as %S does
  if (last_text.empty() || second != last_second) {
    last_text = absl::FormatTime(kFormat, t, absl::UTCTimeZone());
    last_second = second;
  }
  return last_text;
}

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view text) {
  // RFC 3339's date-fullyear is 4DIGIT; absl would also take "-5" or
  // "292277026596", instants whose period maths saturates.
  static const absl::Time kFirst = absl::FromCivil(absl::CivilDay(1, 1, 1), absl::UTCTimeZone());
  static const absl::Time kEnd = absl::FromCivil(absl::CivilDay(10000, 1, 1), absl::UTCTimeZone());
  const bool four_digit_year = text.size() > 4 && text[4] == '-' &&
                               std::all_of(text.begin(), text.begin() + 4, absl::ascii_isdigit);
  absl::Time t;
  std::string err;
  if (!four_digit_year || !absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err) ||
      t < kFirst || t >= kEnd) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not an RFC 3339 timestamp (e.g. 2026-02-01T00:00:00Z)"));
  }
  return t;
}

}  // namespace quotum
