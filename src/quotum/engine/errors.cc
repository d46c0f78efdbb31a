#include "quotum/engine/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"

namespace quotum::engine {
namespace {
constexpr absl::string_view kPayloadUrl = "quotum.dev/code";
}

absl::Status Error(absl::StatusCode code, absl::string_view machine_code, std::string message) {
  absl::Status s(code, message);
  s.SetPayload(kPayloadUrl, absl::Cord(machine_code));
  return s;
}

std::string MachineCode(const absl::Status& status) {
  if (auto p = status.GetPayload(kPayloadUrl)) return std::string(*p);
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return "invalid_request";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kAlreadyExists:
      return "conflict";
    case absl::StatusCode::kPermissionDenied:
      return "forbidden";
    case absl::StatusCode::kUnauthenticated:
      return "unauthorized";
    case absl::StatusCode::kResourceExhausted:
      return "quota_exceeded";
    case absl::StatusCode::kFailedPrecondition:
      return "unprocessable";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    default:
      return "internal";
  }
}

absl::Status ShuttingDown() {
  return Error(absl::StatusCode::kUnavailable, "shutting_down",
               "The server is shutting down; nothing was recorded.");
}

absl::Status StoreUnavailable(absl::string_view what) {
  return Error(absl::StatusCode::kUnavailable, "store_unavailable",
               absl::StrCat(what, " is unavailable right now; retry."));
}

absl::Status QuantityOverflow(absl::string_view meter) {
  return Unprocessable("quantity_overflow",
                       absl::StrCat("quantity would take \"", meter, "\" past its maximum of ",
                                    kMaxCounter, " units; nothing was counted."));
}

absl::Status ReservationNotFound(absl::string_view id) {
  return Error(absl::StatusCode::kNotFound, "reservation_not_found",
               absl::StrCat("No reservation \"", id,
                            "\" holds units now: it is unknown, expired, committed or released."));
}

absl::Status ReservationExists(absl::string_view id) {
  return Error(absl::StatusCode::kAlreadyExists, "reservation_exists",
               absl::StrCat("Reservation \"", id,
                            "\" is still held: its Idempotency-Key was used again after the "
                            "first request was forgotten. Use a new key."));
}

absl::Status TenantNotFound(absl::string_view id) {
  return Error(absl::StatusCode::kNotFound, "tenant_not_found",
               absl::StrCat("No tenant \"", id, "\"."));
}

absl::Status SessionNotFound(absl::string_view id) {
  return Error(absl::StatusCode::kNotFound, "session_not_found",
               absl::StrCat("No session \"", id, "\"."));
}

absl::Status GroupNotFound(absl::string_view id) {
  return Error(absl::StatusCode::kNotFound, "group_not_found",
               absl::StrCat("No group \"", id, "\"."));
}

absl::Status SessionExists(absl::string_view id) {
  return Error(absl::StatusCode::kAlreadyExists, "session_exists",
               absl::StrCat("Session \"", id, "\" already exists."));
}

absl::Status GroupExists(absl::string_view id) {
  return Error(absl::StatusCode::kAlreadyExists, "group_exists",
               absl::StrCat("Group \"", id, "\" already exists."));
}

}  // namespace quotum::engine
