// Usage exports: CSV (streamed a page of days at a time) and the PDF statement.
#include "absl/strings/str_cat.h"
#include "quotum/core/quota.h"
#include "quotum/core/string_views.h"
#include "quotum/engine/tenant_state.h"
#include "quotum/http/api.h"
#include "quotum/http/call_util.h"
#include "quotum/http/render.h"
#include "quotum/http/report_query.h"
#include "quotum/report/csv.h"
#include "quotum/report/usage_statement.h"

namespace quotum::http {

namespace {

/// Days read from the store per CSV piece: bounds the rows held at once to
/// kCsvPageDays × meters × channels, whatever the range.
constexpr int kCsvPageDays = 7;

std::string Filename(const std::string& tenant, const ReportRange& r, std::string_view ext) {
  // Tenant ids are [A-Za-z0-9_.-]: nothing to escape inside the quotes.
  return Cat("attachment; filename=\"quotum-usage-", tenant, "-", FormatDate(r.from), "-",
             FormatDate(r.to), ".", ext, "\"");
}

// Writes the header record, then the rows of kCsvPageDays days per call.
class CsvPages {
 public:
  CsvPages(engine::Engine* engine, engine::Principal who, const ReportRange& r)
      : engine_(engine), who_(std::move(who)), next_(r.from), last_(r.to) {}

  absl::StatusOr<bool> operator()(std::string& out) {
    if (!header_done_) {
      report::AppendCsvRecord(out, {"date", "meter", "channel", "units"});
      header_done_ = true;
      return true;
    }
    const absl::CivilDay page_end = std::min(last_, next_ + (kCsvPageDays - 1));
    auto rows = engine_->DailyByChannel(who_, next_, page_end);
    if (!rows.ok()) return rows.status();
    for (const engine::DailyChannelRow& r : *rows) {
      report::AppendCsvRecord(out, {FormatDate(r.day), r.meter, r.channel, absl::StrCat(r.value)});
    }
    next_ = page_end + 1;
    return next_ <= last_;
  }

 private:
  engine::Engine* engine_;
  engine::Principal who_;
  absl::CivilDay next_;
  absl::CivilDay last_;
  bool header_done_ = false;
};

}  // namespace

void Api::UsageExport(Call& c) {
  const auto format = QueryParam(c.query, "format");
  if (!format || (*format != "csv" && *format != "pdf")) {
    return c.respond(ErrorReply(400, "invalid_format",
                                "\"format\" must be one of csv, pdf (e.g. ?format=csv)."));
  }
  ASSIGN_OR_REPLY(range, ParseReportRange(c.query, Today(), engine_->CurrentPeriod(c.who)), c);
  if (*format == "csv") return ExportCsv(c, range);
  ExportPdf(c, range);
}

void Api::ExportCsv(Call& c, const ReportRange& range) {
  // Fail before the 200 when the store cannot answer at all.
  ASSIGN_OR_REPLY(probe, engine_->DailyByChannel(c.who, range.from, range.from), c);
  (void)probe;
  Reply r;
  r.status = 200;
  r.content_type = "text/csv; charset=utf-8";
  r.Header("Content-Disposition", Filename(c.who.tenant->id, range, "csv"));
  r.Header("Cache-Control", "no-store");
  r.stream = CsvPages(engine_, c.who, range);
  // Each page is a store read: on the read pool, as the first was.
  r.stream_runner = [this](absl::AnyInvocable<void()> page) { read_pool_->Run(std::move(page)); };
  c.respond(std::move(r));
}

void Api::ExportPdf(Call& c, const ReportRange& range) {
  ASSIGN_OR_REPLY(statement, BuildStatement(c.who, range), c);
  ASSIGN_OR_REPLY(pdf, report::RenderStatementPdf(statement), c);
  Reply r;
  r.status = 200;
  r.content_type = "application/pdf";
  r.Header("Content-Disposition", Filename(c.who.tenant->id, range, "pdf"));
  r.Header("Cache-Control", "no-store");
  r.body = std::move(pdf);
  c.respond(std::move(r));
}

absl::StatusOr<report::UsageStatement> Api::BuildStatement(const engine::Principal& who,
                                                           const ReportRange& range) {
  auto usage = engine_->ReadCurrentUsage(who);
  if (!usage.ok()) return usage.status();
  auto daily = engine_->Daily(who, range.from, range.to);
  if (!daily.ok()) return daily.status();
  auto channels = engine_->ChannelsBetween(who, range.start, range.end);
  if (!channels.ok()) return channels.status();
  auto alerts = engine_->Alerts(who, usage->tenant.period.start, usage->tenant.period.end);
  if (!alerts.ok()) return alerts.status();
  const Catalog& cat = engine_->catalog();
  report::UsageStatement s;
  s.tenant_id = usage->tenant.id;
  s.tenant_name = usage->tenant.name;
  s.plan = usage->plan->display_name;
  s.period_label = usage->tenant.period.Label();
  s.period_start = usage->tenant.period.start;
  s.period_end = usage->tenant.period.end;
  s.from = range.from;
  s.to = range.to;
  for (MeterId m = 0; m < cat.meter_count(); ++m) {
    const double pct = UsagePercentage(usage->used[m], usage->limits[m]);
    s.meters.push_back({cat.meters[m].name, usage->used[m], usage->limits[m], pct,
                        std::string(ToStd(BandName(BandFor(pct, usage->plan->bands))))});
  }
  const MeterId chart = *cat.FindMeter(meters::kMessagesSent);
  s.chart_meter = cat.meters[chart].name;
  for (auto it = daily->rbegin(); it != daily->rend(); ++it) {
    s.days.push_back({it->day, it->values[chart]});  // Daily is newest first
  }
  for (const engine::ChannelUsage& ch : *channels) {
    s.channels.push_back({cat.meters[ch.meter].name, ch.channel, ch.value});
  }
  for (const engine::AlertRecord& a : *alerts) {
    s.alerts.push_back({a.meter, a.threshold, a.value, a.limit, a.at, a.resolved_at});
  }
  s.generated_at = engine_->clock().Now();
  return s;
}

}  // namespace quotum::http
