// The usage statement PDF: a cursor runs down A4 pages and each section draws
// itself below the last, starting a new page when it would not fit.
#include "quotum/report/usage_statement.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace quotum::report {

namespace {

constexpr double kPageWidth = 595.0;  // A4 in points
constexpr double kPageHeight = 842.0;
constexpr double kMargin = 48.0;
constexpr double kRow = 16.0;
constexpr double kChartHeight = 170.0;

struct Rgb {
  double r, g, b;
};
constexpr Rgb kInk{0.13, 0.15, 0.18};
constexpr Rgb kMuted{0.38, 0.41, 0.45};
constexpr Rgb kRule{0.82, 0.84, 0.87};
constexpr Rgb kBar{0.15, 0.39, 0.82};

Rgb BandColour(const std::string& band) {
  if (band == "red") return {0.80, 0.15, 0.15};
  if (band == "yellow") return {0.85, 0.55, 0.05};
  return {0.13, 0.55, 0.27};
}

std::string Grouped(uint64_t v) {
  std::string digits = absl::StrCat(v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Day(absl::CivilDay d) { return absl::FormatCivilTime(d); }
std::string Utc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", t, absl::UTCTimeZone());
}

// Drawing state: the cairo context and the y of the next line on this page.
class Page {
 public:
  explicit Page(cairo_t* cr) : cr_(cr) {}

  /// Starts a new page unless `height` more points fit on this one.
  void Need(double height) {
    if (y_ + height <= kPageHeight - kMargin) return;
    cairo_show_page(cr_);
    y_ = kMargin;
  }
  void Skip(double height) { y_ += height; }
  double y() const { return y_; }

  void Text(double x, double y, const std::string& s, double size, bool bold, Rgb c) {
    cairo_select_font_face(cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_set_source_rgb(cr_, c.r, c.g, c.b);
    cairo_move_to(cr_, x, y);
    cairo_show_text(cr_, s.c_str());
  }
  /// Text whose right edge is at `right`.
  void TextRight(double right, double y, const std::string& s, double size, Rgb c) {
    cairo_select_font_face(cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_text_extents_t ext;
    cairo_text_extents(cr_, s.c_str(), &ext);
    Text(right - ext.x_advance, y, s, size, false, c);
  }
  void Box(double x, double y, double w, double h, Rgb c) {
    cairo_set_source_rgb(cr_, c.r, c.g, c.b);
    cairo_rectangle(cr_, x, y, w, h);
    cairo_fill(cr_);
  }
  /// A full-width heading line with a rule under it.
  void Heading(const std::string& s) {
    Need(3 * kRow);
    y_ += kRow;
    Text(kMargin, y_, s, 13, true, kInk);
    Box(kMargin, y_ + 5, kPageWidth - 2 * kMargin, 0.8, kRule);
    y_ += kRow + 2;
  }

 private:
  cairo_t* cr_;
  double y_ = kMargin;
};

void DrawHeader(Page& p, const UsageStatement& s) {
  p.Skip(14);
  p.Text(kMargin, p.y(), "Usage statement", 22, true, kInk);
  p.Skip(26);
  p.Text(kMargin, p.y(), absl::StrCat(s.tenant_name, " (", s.tenant_id, ")"), 12, false, kInk);
  p.Skip(kRow);
  const std::pair<const char*, std::string> lines[] = {
      {"Plan", s.plan},
      {"Billing period",
       absl::StrCat(s.period_label, ": ", Utc(s.period_start), " to ", Utc(s.period_end))},
      {"Report range", absl::StrCat(Day(s.from), " to ", Day(s.to), " (UTC days)")},
      {"Generated", Utc(s.generated_at)}};
  for (const auto& [label, value] : lines) {
    p.Text(kMargin, p.y(), label, 10, true, kMuted);
    p.Text(kMargin + 100, p.y(), value, 10, false, kInk);
    p.Skip(kRow - 2);
  }
}

void DrawTotals(Page& p, const UsageStatement& s) {
  p.Heading("This period against the plan's limits");
  const double right = kPageWidth - kMargin;
  p.Text(kMargin, p.y(), "Meter", 9, true, kMuted);
  p.TextRight(kMargin + 260, p.y(), "Used", 9, kMuted);
  p.TextRight(kMargin + 350, p.y(), "Limit", 9, kMuted);
  p.TextRight(kMargin + 420, p.y(), "%", 9, kMuted);
  p.Text(right - 70, p.y(), "Band", 9, true, kMuted);
  p.Skip(kRow);
  for (const StatementMeter& m : s.meters) {
    p.Need(kRow);
    p.Text(kMargin, p.y(), m.name, 10, false, kInk);
    p.TextRight(kMargin + 260, p.y(), Grouped(m.used), 10, kInk);
    p.TextRight(kMargin + 350, p.y(), m.limit ? Grouped(*m.limit) : "no limit", 10, kInk);
    p.TextRight(kMargin + 420, p.y(), m.limit ? absl::StrFormat("%.1f", m.percentage) : "-", 10,
                kInk);
    if (m.limit) {
      p.Box(right - 70, p.y() - 9, 10, 10, BandColour(m.band));
      p.Text(right - 55, p.y(), m.band, 10, false, kInk);
    }
    p.Skip(kRow);
  }
}

void DrawChart(Page& p, const UsageStatement& s) {
  p.Heading(absl::StrCat(s.chart_meter, " per day"));
  p.Need(kChartHeight + 2 * kRow);
  uint64_t top = 1;
  for (const StatementDay& d : s.days) top = std::max(top, d.value);
  const double left = kMargin + 40, width = kPageWidth - kMargin - left;
  const double base = p.y() + kChartHeight;
  p.Box(left, base, width, 0.8, kMuted);
  p.TextRight(left - 6, p.y() + 8, Grouped(top), 8, kMuted);
  p.TextRight(left - 6, base, "0", 8, kMuted);
  const double slot = s.days.empty() ? width : width / static_cast<double>(s.days.size());
  for (size_t i = 0; i < s.days.size(); ++i) {
    const double h = kChartHeight * static_cast<double>(s.days[i].value) / static_cast<double>(top);
    p.Box(left + slot * i + slot * 0.15, base - h, std::max(0.5, slot * 0.7), h, kBar);
  }
  if (!s.days.empty()) {
    p.Text(left, base + 12, Day(s.days.front().day), 8, false, kMuted);
    p.TextRight(left + width, base + 12, Day(s.days.back().day), 8, kMuted);
  }
  p.Skip(kChartHeight + 2 * kRow);
}

void DrawChannels(Page& p, const UsageStatement& s) {
  p.Heading(absl::StrCat("Units per channel, ", Day(s.from), " to ", Day(s.to)));
  p.Text(kMargin, p.y(), "Meter", 9, true, kMuted);
  p.Text(kMargin + 200, p.y(), "Channel", 9, true, kMuted);
  p.TextRight(kPageWidth - kMargin, p.y(), "Units", 9, kMuted);
  p.Skip(kRow);
  if (s.channels.empty()) {
    p.Text(kMargin, p.y(), "No usage in this range.", 10, false, kMuted);
    p.Skip(kRow);
  }
  for (const StatementChannel& c : s.channels) {
    p.Need(kRow);
    p.Text(kMargin, p.y(), c.meter, 10, false, kInk);
    p.Text(kMargin + 200, p.y(), c.channel.empty() ? "(none)" : c.channel, 10, false, kInk);
    p.TextRight(kPageWidth - kMargin, p.y(), Grouped(c.value), 10, kInk);
    p.Skip(kRow);
  }
}

void DrawAlerts(Page& p, const UsageStatement& s) {
  p.Heading("Alerts this billing period");
  if (s.alerts.empty()) {
    p.Text(kMargin, p.y(), "No threshold was reached.", 10, false, kMuted);
    p.Skip(kRow);
    return;
  }
  p.Text(kMargin, p.y(), "Reached", 9, true, kMuted);
  p.Text(kMargin + 130, p.y(), "Meter", 9, true, kMuted);
  p.TextRight(kMargin + 300, p.y(), "Threshold", 9, kMuted);
  p.TextRight(kMargin + 400, p.y(), "Used / limit", 9, kMuted);
  p.Text(kMargin + 415, p.y(), "Resolved", 9, true, kMuted);
  p.Skip(kRow);
  for (const StatementAlert& a : s.alerts) {
    p.Need(kRow);
    p.Text(kMargin, p.y(), Utc(a.at), 10, false, kInk);
    p.Text(kMargin + 130, p.y(), a.meter, 10, false, kInk);
    p.TextRight(kMargin + 300, p.y(), absl::StrCat(a.threshold, " %"), 10, kInk);
    p.TextRight(kMargin + 400, p.y(), absl::StrCat(Grouped(a.value), " / ", Grouped(a.limit)), 10,
                kInk);
    p.Text(kMargin + 415, p.y(), a.resolved_at ? Utc(*a.resolved_at) : "-", 10, false, kInk);
    p.Skip(kRow);
  }
}

cairo_status_t AppendBytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

}  // namespace

absl::StatusOr<std::string> RenderStatementPdf(const UsageStatement& s) {
  std::string pdf;
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_pdf_surface_create_for_stream(AppendBytes, &pdf, kPageWidth, kPageHeight),
      cairo_surface_destroy);
  cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE,
                                 absl::StrCat("Usage statement ", s.tenant_id).c_str());
  cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_CREATOR, "Quotum");
  {
    std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()),
                                                          cairo_destroy);
    Page page(cr.get());
    DrawHeader(page, s);
    DrawTotals(page, s);
    DrawChart(page, s);
    DrawChannels(page, s);
    DrawAlerts(page, s);
    cairo_show_page(cr.get());
    if (cairo_status(cr.get()) != CAIRO_STATUS_SUCCESS) {
      return absl::InternalError(absl::StrCat("cannot draw the statement: ",
                                              cairo_status_to_string(cairo_status(cr.get()))));
    }
  }
  cairo_surface_finish(surface.get());
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) {
    return absl::InternalError("cannot write the statement PDF");
  }
  return pdf;
}

void ReleaseStatementCaches() {
  cairo_debug_reset_static_data();
  FcFini();
}

}  // namespace quotum::report
