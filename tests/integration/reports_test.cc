// Report routes and exports against the real binary: ranges and presets of
// usage/daily, usage/hourly and usage/channels, every refusal, the streamed
// RFC 4180 CSV and the PDF statement rendered to an image as a reader sees it.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "harness.h"

namespace quotum::itest {
namespace {

using testing::HttpClient;

std::string Str(const boost::json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : boost::json::serialize(v);
}

std::string Today() {
  return absl::FormatCivilTime(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()));
}

class ReportsTest : public OneServerSuite<ReportsTest> {
 protected:
  /// A Pro tenant that sent 5 messages on whatsapp and 3 on telegram.
  static Tenant WithUsage(HttpClient& c, const std::string& id) {
    Tenant t = CreateTenant(c, id, "pro");
    for (auto [channel, n] : {std::pair{"whatsapp", 5}, std::pair{"telegram", 3}}) {
      auto r = c.Post("/api/v2/quota/consume",
                      absl::StrCat(R"({"meter":"messages_sent","quantity":)", n, R"(,"channel":")",
                                   channel, R"("})"),
                      Bearer(t.key));
      EXPECT_EQ(r.status, 200) << r.body;
    }
    // Scale-out: the reports trail the decisions by a facts-drain round.
    GetEventually(c, "/api/v2/usage/daily?days=1", Bearer(t.key),
                  [](const testing::HttpResponse& r) {
                    return r.json().is_array() && !r.json().as_array().empty() &&
                           r.json().as_array()[0].at("messages_sent") == 8;
                  });
    return t;
  }
};

TEST_F(ReportsTest, DailyTakesRangesPresetsAndStillDays) {
  auto c = Client();
  Tenant t = WithUsage(c, "rep-daily");
  const std::pair<std::string, size_t> cases[] = {
      {"?days=3", 3},   {"?days=30", 30},   {"?range=today", 1},
      {"?range=7d", 7}, {"?range=30d", 30}, {absl::StrCat("?from=", Today(), "&to=", Today()), 1}};
  for (const auto& [query, rows] : cases) {
    auto r = c.Get("/api/v2/usage/daily" + query, Bearer(t.key));
    ASSERT_EQ(r.status, 200) << query << " " << r.body;
    auto arr = r.json().as_array();
    ASSERT_EQ(arr.size(), rows) << query;
    EXPECT_EQ(Str(arr[0].at("date")), Today()) << query;  // newest first
    EXPECT_EQ(arr[0].at("messages_sent"), 8) << query;
  }
  auto period = c.Get("/api/v2/usage/daily?range=period", Bearer(t.key));
  ASSERT_EQ(period.status, 200) << period.body;
  EXPECT_GE(period.json().as_array().size(), 28u);
  // Without a range or days: the current period.
  auto plain = c.Get("/api/v2/usage/daily", Bearer(t.key));
  ASSERT_EQ(plain.status, 200) << plain.body;
  const boost::json::value a = plain.json(), b = period.json();
  ASSERT_EQ(a.as_array().size(), b.as_array().size()) << plain.body;
  for (size_t i = 0; i < a.as_array().size(); ++i) {  // api_calls differ: each read is one
    EXPECT_EQ(a.as_array()[i].at("date"), b.as_array()[i].at("date")) << i;
    EXPECT_EQ(a.as_array()[i].at("messages_sent"), b.as_array()[i].at("messages_sent")) << i;
  }
}

TEST_F(ReportsTest, HourlyHasTwentyFourUtcHours) {
  auto c = Client();
  Tenant t = WithUsage(c, "rep-hourly");
  for (const std::string& q : std::vector<std::string>{"", "?date=" + Today()}) {
    auto r = c.Get("/api/v2/usage/hourly" + q, Bearer(t.key));
    ASSERT_EQ(r.status, 200) << r.body;
    auto hours = r.json().as_array();
    ASSERT_EQ(hours.size(), 24u);
    EXPECT_EQ(Str(hours[0].at("hour")), Today() + "T00:00:00Z");
    EXPECT_EQ(Str(hours[23].at("hour")), Today() + "T23:00:00Z");
    int64_t sent = 0;
    for (const auto& h : hours) sent += h.at("messages_sent").to_number<int64_t>();
    EXPECT_EQ(sent, 8);
  }
  auto empty = c.Get("/api/v2/usage/hourly?date=2001-02-03", Bearer(t.key));
  ASSERT_EQ(empty.status, 200);
  EXPECT_EQ(empty.json().as_array()[5].at("messages_sent"), 0);
}

TEST_F(ReportsTest, ChannelsGivesEveryMeterPerChannelOverARange) {
  auto c = Client();
  Tenant t = WithUsage(c, "rep-channels");
  for (const std::string q :
       {"", "?range=today", "?range=period", "?meter=messages_sent&range=7d"}) {
    auto r = c.Get("/api/v2/usage/channels" + q, Bearer(t.key));
    ASSERT_EQ(r.status, 200) << q << " " << r.body;
    auto o = r.json().as_object();
    // The shape of before: meter, total and channels of the chosen meter.
    EXPECT_EQ(o.at("meter"), "messages_sent");
    EXPECT_EQ(o.at("total"), 8);
    EXPECT_EQ(o.at("channels").at("whatsapp"), 5);
    EXPECT_EQ(o.at("channels").at("telegram"), 3);
    EXPECT_EQ(o.at("channels").at("webchat"), 0);
    // Added: the range and every counter meter.
    EXPECT_EQ(o.at("meters").at("messages_sent").at("channels").at("whatsapp"), 5) << q;
    EXPECT_TRUE(o.at("meters").as_object().contains("messages_received"));
    EXPECT_FALSE(o.at("meters").as_object().contains("sessions_active"));  // a gauge
    EXPECT_LE(Str(o.at("from")), Today());
    EXPECT_EQ(o.at("to").as_string().size(), 10u);
  }
  auto today = c.Get("/api/v2/usage/channels?range=today", Bearer(t.key)).json();
  EXPECT_EQ(Str(today.at("start")), Today() + "T00:00:00Z");
  auto past = c.Get("/api/v2/usage/channels?from=2001-01-01&to=2001-01-31", Bearer(t.key));
  ASSERT_EQ(past.status, 200);
  EXPECT_EQ(past.json().at("total"), 0);
}

// Every refusal is a 400 with its code and a sentence, and changes nothing.
TEST_F(ReportsTest, BadRangesAreRefusedWithTheirReason) {
  auto c = Client();
  Tenant t = WithUsage(c, "rep-bad");
  struct Case {
    std::string target;
    std::string code;
    std::string says;
  };
  const Case cases[] = {
      {"/api/v2/usage/daily?from=2026-13-01", "invalid_query", "YYYY-MM-DD"},
      {"/api/v2/usage/daily?from=2026-02-30&to=2026-03-03", "invalid_query", "\"from\""},
      {"/api/v2/usage/daily?to=tomorrow", "invalid_query", "\"to\""},
      {"/api/v2/usage/daily?from=2026-03-02&to=2026-03-01", "invalid_range", "after"},
      {"/api/v2/usage/daily?from=2024-01-01&to=2025-12-31", "invalid_range", "366"},
      {"/api/v2/usage/daily?range=7d&from=2026-01-01", "invalid_query", "either"},
      {"/api/v2/usage/daily?range=7d&days=3", "invalid_query", "either"},
      {"/api/v2/usage/daily?range=week", "invalid_query", "today, 7d, 30d, period"},
      {"/api/v2/usage/hourly?date=2026-1-5", "invalid_query", "\"date\""},
      {"/api/v2/usage/channels?range=1y", "invalid_query", "today, 7d, 30d, period"},
      {"/api/v2/usage/channels?from=2026-03-02&to=2026-03-01", "invalid_range", "after"},
      {"/api/v2/usage/channels?range=today&to=2026-01-01", "invalid_query", "either"},
      {"/api/v2/usage/export?format=csv&from=2024-01-01&to=2025-06-01", "invalid_range", "366"},
      {"/api/v2/usage/export?format=pdf&range=yesterday", "invalid_query", "range"},
      {"/api/v2/usage/export?format=xlsx", "invalid_format", "csv, pdf"},
      {"/api/v2/usage/export", "invalid_format", "csv, pdf"},
  };
  const auto before = c.Get("/api/v2/usage/channels", Bearer(t.key)).json().at("meters");
  for (const Case& k : cases) {
    auto r = c.Get(k.target, Bearer(t.key));
    EXPECT_EQ(r.status, 400) << k.target << " " << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/json") << k.target;
    auto j = r.json();
    ASSERT_TRUE(j.is_object()) << k.target;
    EXPECT_EQ(j.at("success"), false);
    EXPECT_EQ(Str(j.at("code")), k.code) << k.target;
    EXPECT_NE(std::string(j.at("error").as_string()).find(k.says), std::string::npos)
        << k.target << ": " << j.at("error");
  }
  auto after = c.Get("/api/v2/usage/channels", Bearer(t.key)).json().at("meters");
  EXPECT_EQ(after.at("messages_sent"), before.at("messages_sent"));
}

TEST_F(ReportsTest, CsvExportIsAStreamedRfc4180Attachment) {
  auto c = Client();
  Tenant t = WithUsage(c, "rep-csv");
  auto r = c.Get("/api/v2/usage/export?format=csv&range=30d", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "text/csv; charset=utf-8");
  const std::string from =
      absl::FormatCivilTime(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) - 29);
  EXPECT_EQ(
      r.header("Content-Disposition"),
      absl::StrCat("attachment; filename=\"quotum-usage-rep-csv-", from, "-", Today(), ".csv\""));
  EXPECT_EQ(r.header("Transfer-Encoding"), "chunked");
  EXPECT_EQ(r.header("Content-Length"), "");
  ASSERT_GE(r.body.size(), 2u);
  EXPECT_EQ(r.body.substr(r.body.size() - 2), "\r\n");
  std::vector<std::string> lines = absl::StrSplit(r.body, "\r\n");
  lines.pop_back();  // after the last CRLF
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "date,meter,channel,units");
  for (const auto& l : lines) EXPECT_EQ(l.find('\n'), std::string::npos) << "a bare LF";
  EXPECT_NE(std::find(lines.begin(), lines.end(), Today() + ",messages_sent,whatsapp,5"),
            lines.end())
      << r.body;
  EXPECT_NE(std::find(lines.begin(), lines.end(), Today() + ",messages_sent,telegram,3"),
            lines.end());
  // A year spans many pages; each row comes once.
  auto year = c.Get(
      absl::StrCat("/api/v2/usage/export?format=csv&from=",
                   absl::FormatCivilTime(absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) - 365),
                   "&to=", Today()),
      Bearer(t.key));
  ASSERT_EQ(year.status, 200);
  // api_calls grows with every read; the other rows are the same whatever the pages.
  auto without_calls = [](const std::string& body) {
    std::string out;
    for (absl::string_view l : absl::StrSplit(body, "\r\n")) {
      if (!absl::StrContains(l, ",api_calls,")) absl::StrAppend(&out, l, "\n");
    }
    return out;
  };
  EXPECT_EQ(without_calls(year.body), without_calls(r.body));
  // HEAD: the headers alone; the connection stays usable.
  auto head = c.Send("HEAD", "/api/v2/usage/export?format=csv", "", Bearer(t.key));
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(c.Get("/healthz").status, 200);
}

// pdftoppm output as PPM (P6): width, height and the RGB bytes.
struct Image {
  int width = 0, height = 0;
  std::string rgb;
};
Image ReadPpm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string magic;
  Image img;
  int maxval = 0;
  in >> magic >> img.width >> img.height >> maxval;
  in.get();
  img.rgb.assign(std::istreambuf_iterator<char>(in), {});
  EXPECT_EQ(magic, "P6");
  EXPECT_EQ(img.rgb.size(), static_cast<size_t>(img.width) * img.height * 3);
  return img;
}

TEST_F(ReportsTest, PdfStatementRendersAsAPageWithAChart) {
  auto c = Client();
  Tenant t = WithUsage(c, "rep-pdf");
  auto r = c.Get("/api/v2/usage/export?format=pdf&range=30d", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("Content-Type"), "application/pdf");
  EXPECT_NE(r.header("Content-Disposition").find(".pdf\""), std::string::npos);
  ASSERT_EQ(r.body.rfind("%PDF-", 0), 0u);
  const std::string dir = testing::MakeTempDir("quotum-pdf-");
  const std::string pdf = dir + "/statement.pdf";
  std::ofstream(pdf, std::ios::binary) << r.body;
  // Render page 1 as a reader's viewer would (72 dpi: one pixel per point).
  ASSERT_EQ(
      std::system(("pdftoppm -r 72 -f 1 -l 1 -singlefile " + pdf + " " + dir + "/page").c_str()), 0)
      << "pdftoppm (poppler-utils, scripts/install-deps.sh) failed";
  Image img = ReadPpm(dir + "/page.ppm");
  EXPECT_EQ(img.width, 595);  // A4
  EXPECT_EQ(img.height, 842);
  size_t inked = 0, bar = 0, banded = 0;
  for (size_t i = 0; i + 2 < img.rgb.size(); i += 3) {
    const int red = static_cast<unsigned char>(img.rgb[i]);
    const int green = static_cast<unsigned char>(img.rgb[i + 1]);
    const int blue = static_cast<unsigned char>(img.rgb[i + 2]);
    if (red < 200 || green < 200 || blue < 200) ++inked;
    if (blue > 150 && red < 80) ++bar;                    // the chart's blue bars
    if (green > 110 && red < 60 && blue < 100) ++banded;  // a green band square
  }
  const size_t pixels = img.rgb.size() / 3;
  EXPECT_GT(inked, pixels / 100) << "the page is (nearly) blank";
  EXPECT_GT(bar, 20u) << "no bar in the daily chart";
  EXPECT_GT(banded, 20u) << "no band colour in the totals";
  // Refresh the page image kept in the docs: QUOTUM_STATEMENT_PNG=docs/usage-statement.png.
  if (const char* keep = std::getenv("QUOTUM_STATEMENT_PNG"); keep && *keep) {
    const std::string out = std::string(keep).substr(0, std::string(keep).size() - 4);
    EXPECT_EQ(std::system(("pdftoppm -png -r 96 -f 1 -l 1 -singlefile " + pdf + " " + out).c_str()),
              0);
  }
}

// The statement lists the thresholds the period reached (read back as text,
// as a person's PDF reader would find them).
TEST_F(ReportsTest, PdfStatementListsThePeriodsAlerts) {
  auto c = Client();
  Tenant t = CreateTenant(c, "rep-pdf-alerts", "starter");  // 1,000 messages; 80, 90, 100 %
  ASSERT_EQ(
      c.Post("/api/v2/quota/consume", ConsumeBody("messages_sent", 850), Bearer(t.key)).status,
      200);
  // Scale-out: alerts are recorded by the facts drain.
  GetEventually(c, "/api/v2/alerts", Bearer(t.key), [](const testing::HttpResponse& r) {
    return r.status == 200 && !r.json().at("alerts").as_array().empty();
  });
  auto r = c.Get("/api/v2/usage/export?format=pdf", Bearer(t.key));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string dir = testing::MakeTempDir("quotum-pdf-");
  std::ofstream(dir + "/statement.pdf", std::ios::binary) << r.body;
  ASSERT_EQ(std::system(
                ("pdftotext -layout " + dir + "/statement.pdf " + dir + "/statement.txt").c_str()),
            0)
      << "pdftotext (poppler-utils, scripts/install-deps.sh) failed";
  std::stringstream text;
  text << std::ifstream(dir + "/statement.txt").rdbuf();
  EXPECT_NE(text.str().find("Alerts this billing period"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("80 %"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("850 / 1,000"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("90 %"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("No threshold was reached."), std::string::npos) << text.str();
}

}  // namespace
}  // namespace quotum::itest
