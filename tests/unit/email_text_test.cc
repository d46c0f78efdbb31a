// The e-mail an event becomes: thresholds keep their subject; a usage report
// is written out as lines a person reads, from its JSON fields.
#include "quotum/notify/email_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "quotum/core/billing_period.h"

namespace quotum::notify {
namespace {

using ::testing::HasSubstr;

engine::EventRecord WeeklyReport() {
  engine::EventRecord e;
  e.id = "evt_1";
  e.type = "usage.report.weekly";
  e.tenant_id = "acme";
  e.at = *ParseRfc3339("2026-11-30T00:05:00Z");
  e.detail = "Weekly usage 2026-11-23 to 2026-11-29: 8150 messages_sent";
  e.fields = {{"from", "2026-11-23"},
              {"to", "2026-11-29"},
              {"plan", "pro"},
              {"totals",
               R"({"messages_sent":{"total":8150,"channels":{"telegram":8000,"whatsapp":150},)"
               R"("peak_day":"2026-11-25","peak_value":8000}})",
               false, true},
              {"alerts",
               R"([{"meter":"messages_sent","threshold":80,"value":8100,"limit":10000,)"
               R"("at":"2026-11-25T09:00:00Z"}])",
               false, true},
              {"forecast",
               R"({"meter":"messages_sent","period":"2026-11","projected_period_end":9900,)"
               R"("method":"ewma7","limit":10000,"projected_percentage":99.0,)"
               R"("limit_reached_at":null,"recommended_plan":"business"})",
               false, true}};
  return e;
}

TEST(EmailTextTest, AReportReadsAsTotalsAlertsAndForecast) {
  const Email m = EmailOf(WeeklyReport(), "ops@example.com");
  EXPECT_EQ(m.subject, "[Quotum] acme: weekly usage report, 2026-11-23 to 2026-11-29");
  EXPECT_EQ(m.to, "ops@example.com");
  EXPECT_THAT(m.text, HasSubstr("Plan: pro\n"));
  EXPECT_THAT(m.text, HasSubstr("messages_sent: 8150 (telegram 8000, whatsapp 150); busiest day "
                                "2026-11-25 with 8000\n"));
  EXPECT_THAT(m.text, HasSubstr("  messages_sent reached 80% at 2026-11-25T09:00:00Z\n"));
  EXPECT_THAT(m.text, HasSubstr("Forecast for 2026-11: messages_sent 9900 by the period's end of "
                                "a limit of 10000; recommended plan: business\n"));
  EXPECT_THAT(m.text, HasSubstr("Event id: evt_1"));
}

TEST(EmailTextTest, AReportWithoutUsageOrForecastStillReads) {
  engine::EventRecord e = WeeklyReport();
  e.detail = "Weekly usage 2026-11-23 to 2026-11-29: nothing used";
  e.fields = {{"from", "2026-11-23"},
              {"to", "2026-11-29"},
              {"plan", "pro"},
              {"totals", "{}", false, true},
              {"alerts", "[]", false, true},
              {"forecast", "null", false, true}};
  const Email m = EmailOf(e, "ops@example.com");
  EXPECT_THAT(m.text, HasSubstr("nothing used.\n"));
  EXPECT_THAT(m.text, ::testing::Not(HasSubstr("Alerts")));
  EXPECT_THAT(m.text, ::testing::Not(HasSubstr("Forecast")));
}

TEST(EmailTextTest, AThresholdKeepsItsSubject) {
  engine::EventRecord e;
  e.type = "usage.threshold_reached";
  e.tenant_id = "acme";
  e.detail = "messages_sent reached 80% of its limit";
  e.fields = {{"meter", "messages_sent"}, {"threshold", "80", true}};
  EXPECT_EQ(EmailOf(e, "a@b.c").subject, "[Quotum] acme: messages_sent reached 80% of its limit");
}

}  // namespace
}  // namespace quotum::notify
