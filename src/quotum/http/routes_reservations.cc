// Reservation routes (SPEC §2 "reserve -> commit/release"): hold units of a
// counter meter whose cost is known only afterwards (AI tokens), then charge
// the real amount or give them back. Each is one decision of the engine.
#include <algorithm>

#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/engine/reservations.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_input.h"
#include "quotum/http/json_output.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

// "ttl_s" in seconds (default kDefaultReservationTtl); an absurd value is
// passed on as out of range for the engine to refuse.
absl::StatusOr<absl::Duration> TtlField(const Fields& f) {
  auto ttl = f.Count("ttl_s");
  if (!ttl.ok() && engine::MachineCode(ttl.status()) == "invalid_quantity") {
    return engine::Unprocessable("invalid_ttl", "\"ttl_s\" must be a number of seconds.");
  }
  if (!ttl.ok()) return ttl.status();
  if (!*ttl) return engine::kDefaultReservationTtl;
  return absl::Seconds(static_cast<int64_t>(std::min<uint64_t>(**ttl, uint64_t{1} << 40)));
}

// A commit or release of "reservation_id": its meter is named by the id (an
// id that names none is answered 404 by the engine).
absl::StatusOr<engine::MeterRequest> EndingRequest(const Fields& f, engine::HoldCheck::Op op) {
  auto id = f.String("reservation_id", 160);
  if (!id.ok()) return id.status();
  if (!*id || (*id)->empty()) {
    return engine::BadRequest("missing_field", "\"reservation_id\" is required.");
  }
  engine::MeterRequest req;
  req.hold = op;
  req.hold_id = **id;
  req.meter = std::string(engine::MeterOfReservationId(req.hold_id).value_or(""));
  return req;
}

void DescribeEnd(boost::json::object& o, const engine::Decision& d) {
  if (!d.reservation) return;  // a replay of a record stored without it
  const engine::ReservationUse& r = *d.reservation;
  o["reservation_id"] = r.id;
  o["committed"] = d.consumed;
  o["released"] = r.units - std::min(r.units, d.consumed);
}

}  // namespace

void Api::QuotaReserve(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(meter, f.String("meter", 64), c);
  ASSIGN_OR_REPLY(quantity, f.Quantity("quantity"), c);
  ASSIGN_OR_REPLY(ttl, TtlField(f), c);
  if (!meter || !quantity) {
    return c.respond(ErrorReply(400, "missing_field", "\"meter\" and \"quantity\" are required."));
  }
  engine::MeterRequest req;
  req.meter = *meter;
  req.quantity = *quantity;
  req.hold = engine::HoldCheck::Op::kReserve;
  req.hold_ttl = ttl;
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.hold_id = engine::ReservationIdFor(c.who.tenant->id, req.meter, req.idempotency_key);
  req.operation = "quota.reserve";
  Meter(c, std::move(req), [](boost::json::object& o, const engine::Decision& d) {
    if (!d.reservation) return;  // a replay of a record stored without it
    o["reservation_id"] = d.reservation->id;
    o["expires_at"] = FormatRfc3339(d.reservation->expires_at);
  });
}

void Api::QuotaCommit(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(req, EndingRequest(f, engine::HoldCheck::Op::kCommit), c);
  ASSIGN_OR_REPLY(quantity, f.Count("quantity"), c);
  ASSIGN_OR_REPLY(channel, f.String("channel", 64), c);
  if (!quantity) {
    return c.respond(ErrorReply(400, "missing_field",
                                "\"quantity\" (the units really used, 0 or more) is required."));
  }
  if (channel && channel->empty()) {
    return c.respond(ErrorReply(422, "unknown_channel",
                                "\"channel\" must name a channel; leave it out for the default."));
  }
  req.quantity = *quantity;
  req.channel = channel.value_or("");
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.operation = "quota.commit";
  Meter(c, std::move(req), DescribeEnd);
}

void Api::QuotaRelease(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(req, EndingRequest(f, engine::HoldCheck::Op::kRelease), c);
  req.idempotency_key = IdempotencyKeyOf(c.req);
  req.operation = "quota.release";
  Meter(c, std::move(req), DescribeEnd);
}

}  // namespace quotum::http
