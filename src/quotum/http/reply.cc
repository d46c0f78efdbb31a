#include "quotum/http/reply.h"

#include <boost/json/object.hpp>

#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/http/json_output.h"

namespace quotum::http {

namespace {
// An error sentence never grows past this, whatever input it quotes.
constexpr size_t kMaxErrorBytes = 512;
}  // namespace

Reply JsonReply(unsigned status, const boost::json::value& value) {
  Reply r;
  r.status = status;
  r.body = ToJson(value);
  return r;
}

Reply ErrorReply(unsigned status, std::string_view code, std::string_view message) {
  boost::json::object o;
  o["success"] = false;
  o["error"] = SafeText(message, kMaxErrorBytes);
  o["code"] = code;
  return JsonReply(status, o);
}

Reply ReplyForStatus(const absl::Status& status) {
  unsigned http_status = 500;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      http_status = 400;
      break;
    case absl::StatusCode::kUnauthenticated:
      http_status = 401;
      break;
    case absl::StatusCode::kPermissionDenied:
      http_status = 403;
      break;
    case absl::StatusCode::kNotFound:
      http_status = 404;
      break;
    case absl::StatusCode::kAlreadyExists:
      http_status = 409;
      break;
    case absl::StatusCode::kAborted:
      http_status = 409;
      break;
    case absl::StatusCode::kOutOfRange:
      http_status = 413;
      break;
    case absl::StatusCode::kFailedPrecondition:
      http_status = 422;
      break;
    case absl::StatusCode::kResourceExhausted:
      http_status = 429;
      break;
    case absl::StatusCode::kUnavailable:
      http_status = 503;
      break;
    default:
      http_status = 500;
      break;
  }
  return ErrorReply(http_status, engine::MachineCode(status), ToStd(status.message()));
}

}  // namespace quotum::http
