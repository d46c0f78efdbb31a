#include "quotum/notify/email_text.h"

#include "absl/strings/str_cat.h"
#include "quotum/core/billing_period.h"

namespace quotum::notify {
namespace {

std::string FieldOf(const engine::EventRecord& e, std::string_view name) {
  for (const engine::EventField& f : e.fields) {
    if (f.name == name) return f.value;
  }
  return "";
}

std::string SubjectOf(const engine::EventRecord& e) {
  if (e.type == "usage.threshold_reached") {
    return absl::StrCat("[Quotum] ", e.tenant_id, ": ", FieldOf(e, "meter"), " reached ",
                        FieldOf(e, "threshold"), "% of its limit");
  }
  if (e.type == "usage.threshold_resolved") {
    return absl::StrCat("[Quotum] ", e.tenant_id, ": ", FieldOf(e, "meter"), " is below ",
                        FieldOf(e, "threshold"), "% of its limit again");
  }
  return absl::StrCat("[Quotum] ", e.tenant_id, ": ", e.type);
}

}  // namespace

Email EmailOf(const engine::EventRecord& e, const std::string& to) {
  std::string text = absl::StrCat(e.detail, ".\n\n");
  absl::StrAppend(&text, "Event:  ", e.type, "\nTenant: ", e.tenant_id,
                  "\nAt:     ", FormatRfc3339(e.at), "\n");
  for (const engine::EventField& f : e.fields) absl::StrAppend(&text, f.name, ": ", f.value, "\n");
  absl::StrAppend(&text, "\nEvent id: ", e.id, "\n");
  return Email{to, SubjectOf(e), std::move(text), e.id};
}

}  // namespace quotum::notify
