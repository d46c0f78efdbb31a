// The subscription: its plan, plan changes (preview, change, cancel the
// pending one), the ledger, and an admin's move of any tenant.
#include <algorithm>

#include "quotum/core/string_views.h"
#include "quotum/engine/errors.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/json_input.h"
#include "quotum/http/render.h"

namespace quotum::http {
namespace {

// The plan's limits, unlimited meters as null.
boost::json::object LimitsJson(const Catalog& cat, const Plan& p) {
  boost::json::object limits;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    if (!cat.meters[m].limitable) continue;
    limits[cat.meters[m].name] = p.limits[m] ? boost::json::value(*p.limits[m]) : nullptr;
  }
  return limits;
}

boost::json::object ChangeJson(const engine::SubscriptionChange& c) {
  return {{"id", c.id},
          {"kind", c.kind},
          {"from", c.from_plan},
          {"to", c.to_plan},
          {"actor", c.actor},
          {"requested_at", FormatRfc3339(c.requested_at)},
          {"effective_at", FormatRfc3339(c.effective_at)},
          {"proration_cents", c.amount_cents},
          {"state", c.state}};
}

// Answers a plan change (or its cancellation) with the ledger line.
engine::Engine::Callback<engine::SubscriptionChange> ChangeAnswer(Respond respond) {
  return [respond = std::move(respond)](absl::StatusOr<engine::SubscriptionChange> r) mutable {
    if (!r.ok()) return respond(ReplyForStatus(r.status()));
    respond(JsonReply(200, ChangeJson(*r)));
  };
}

// The body's "plan", or a 400 reply.
absl::StatusOr<std::string> PlanField(const boost::json::object& body) {
  absl::StatusOr<std::optional<std::string>> plan = Fields(body).String("plan", 64);
  if (!plan.ok()) return plan.status();
  if (!*plan) return engine::BadRequest("missing_field", "\"plan\" is required.");
  return **plan;
}

/// The pack a purchase (add-on or top-up) names: "meter" and "quantity",
/// both required (400 missing_field).
struct PackChoice {
  std::string meter;
  uint64_t quantity = 0;
};
absl::StatusOr<PackChoice> PackChoiceOf(const Fields& f) {
  absl::StatusOr<std::optional<std::string>> meter = f.String("meter", 64);
  if (!meter.ok()) return meter.status();
  absl::StatusOr<std::optional<uint64_t>> quantity = f.Quantity("quantity");
  if (!quantity.ok()) return quantity.status();
  if (!*meter || !*quantity) {
    return engine::BadRequest("missing_field", "\"meter\" and \"quantity\" are required.");
  }
  return PackChoice{**meter, **quantity};
}

}  // namespace

void Api::SubscriptionPreview(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(plan, PlanField(body), c);
  ASSIGN_OR_REPLY(q, engine_->PreviewPlanChange(c.who, plan), c);
  boost::json::object o{{"kind", ToStd(PlanChangeKindName(q.kind))},
                        {"from", q.from->name},
                        {"to", q.to->name},
                        {"effective_at", FormatRfc3339(q.effective_at)},
                        {"proration_cents", q.proration_cents},
                        {"new_price_cents", q.to->price_cents},
                        {"new_limits", LimitsJson(engine_->catalog(), *q.to)}};
  c.respond(JsonReply(200, o));
}

void Api::SubscriptionChange(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(plan, PlanField(body), c);
  engine_->ChangePlan(c.who, plan, ChangeAnswer(std::move(c.respond)));
}

void Api::CancelPendingPlan(Call& c) {
  engine_->CancelPendingPlan(c.who, ChangeAnswer(std::move(c.respond)));
}

void Api::GetSubscription(Call& c) {
  ASSIGN_OR_REPLY(v, engine_->Subscription(c.who), c);
  boost::json::array changes;
  for (const engine::SubscriptionChange& ch : v.changes) changes.push_back(ChangeJson(ch));
  boost::json::object o{{"tenant_id", v.tenant.id},
                        {"plan", v.plan->name},
                        {"price_cents", v.plan->price_cents},
                        {"period_start", FormatRfc3339(v.tenant.period.start)},
                        {"period_end", FormatRfc3339(v.tenant.period.end)},
                        {"pending_plan", PendingPlanJson(v.pending)},
                        {"changes", std::move(changes)}};
  c.respond(JsonReply(200, o));
}

void Api::BuyAddon(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(pack, PackChoiceOf(f), c);
  engine_->BuyAddon(
      c.who, pack.meter, pack.quantity,
      [respond = std::move(c.respond)](absl::StatusOr<engine::BoughtAddon> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        boost::json::object o = AddonJson(r->addon);
        o["proration_cents"] = r->proration_cents;
        respond(JsonReply(201, o));
      });
}

void Api::ListAddons(Call& c) {
  boost::json::array arr;
  for (const engine::AddonRecord& a : engine_->ListAddons(c.who)) arr.push_back(AddonJson(a));
  c.respond(JsonReply(200, boost::json::object{{"addons", std::move(arr)}}));
}

void Api::BuyTopup(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  Fields f(body);
  ASSIGN_OR_REPLY(pack, PackChoiceOf(f), c);
  auto days = f.Count("expires_in_days");
  if (!days.ok()) {
    return c.respond(
        ErrorReply(422, "invalid_expiry", "\"expires_in_days\" must be a whole number of days."));
  }
  std::optional<int64_t> expires_in_days;
  if (*days) expires_in_days = static_cast<int64_t>(std::min<uint64_t>(**days, uint64_t{1} << 40));
  engine_->BuyTopup(
      c.who, pack.meter, pack.quantity, expires_in_days,
      [respond = std::move(c.respond)](absl::StatusOr<engine::TopupRecord> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        respond(JsonReply(201, TopupJson(*r)));
      });
}

void Api::ListTopups(Call& c) {
  absl::StatusOr<std::vector<engine::TopupRecord>> topups = engine_->ListTopups(c.who);
  if (!topups.ok()) return c.respond(ReplyForStatus(topups.status()));
  boost::json::array arr;
  for (const engine::TopupRecord& r : *topups) arr.push_back(TopupJson(r));
  c.respond(JsonReply(200, boost::json::object{{"topups", std::move(arr)}}));
}

void Api::CancelAddon(Call& c) {
  engine_->CancelAddon(
      c.who, c.params[0],
      [respond = std::move(c.respond)](absl::StatusOr<engine::AddonRecord> r) mutable {
        if (!r.ok()) return respond(ReplyForStatus(r.status()));
        respond(JsonReply(200, AddonJson(*r)));
      });
}

void Api::AdminChangePlan(Call& c) {
  PARSE_BODY_OR_REPLY(body, c);
  ASSIGN_OR_REPLY(plan, PlanField(body), c);
  engine_->AdminChangePlan(c.params[0], plan, ChangeAnswer(std::move(c.respond)));
}

}  // namespace quotum::http
