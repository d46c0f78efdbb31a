#include "quotum/obs/metrics.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace quotum::obs {
namespace {

// Label values joined with a separator that cannot appear in them unescaped.
std::string Key(const std::vector<std::string>& values) { return absl::StrJoin(values, "\x1f"); }

std::string LabelText(const std::vector<std::string>& names, const std::string& key,
                      const std::string& extra = "") {
  std::vector<std::string> values = absl::StrSplit(key, '\x1f');
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", names[i], "=\"",
                    EscapeLabel(i < values.size() ? values[i] : ""), "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", extra);
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

CounterFamily::CounterFamily(std::string name, std::string help, std::vector<std::string> labels)
    : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)) {}

void CounterFamily::Add(const std::vector<std::string>& values, uint64_t n) {
  const std::string key = Key(values);
  {
    ReaderMutexLock lock(&mu_);
    auto it = children_.find(key);
    if (it != children_.end()) {
      it->second->fetch_add(n, std::memory_order_relaxed);
      return;
    }
  }
  MutexLock lock(&mu_);
  auto& child = children_[key];
  if (!child) child = std::make_unique<std::atomic<uint64_t>>(0);
  child->fetch_add(n, std::memory_order_relaxed);
}

std::atomic<uint64_t>* CounterFamily::Child(const std::vector<std::string>& values) {
  MutexLock lock(&mu_);
  auto& child = children_[Key(values)];
  if (!child) child = std::make_unique<std::atomic<uint64_t>>(0);
  return child.get();
}

uint64_t CounterFamily::Value(const std::vector<std::string>& values) const {
  ReaderMutexLock lock(&mu_);
  auto it = children_.find(Key(values));
  return it == children_.end() ? 0 : it->second->load();
}

void CounterFamily::Render(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " counter\n");
  ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::string, uint64_t>> rows;
  for (const auto& [k, v] : children_) rows.emplace_back(k, v->load());
  std::sort(rows.begin(), rows.end());
  for (const auto& [k, v] : rows) absl::StrAppend(&out, name_, LabelText(labels_, k), " ", v, "\n");
}

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> labels, std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      labels_(std::move(labels)),
      bounds_(std::move(bounds)) {}

HistogramFamily::Child* HistogramFamily::GetChild(const std::vector<std::string>& values) {
  const std::string key = Key(values);
  {
    ReaderMutexLock lock(&mu_);
    auto it = children_.find(key);
    if (it != children_.end()) return it->second.get();
  }
  MutexLock lock(&mu_);
  auto& c = children_[key];
  if (!c) c = std::make_unique<Child>(bounds_.size());
  return c.get();
}

void HistogramFamily::Observe(const std::vector<std::string>& values, double v) {
  ObserveChild(GetChild(values), v);
}

void HistogramFamily::ObserveChild(Child* child, double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  child->buckets[i].fetch_add(1, std::memory_order_relaxed);
  child->count.fetch_add(1, std::memory_order_relaxed);
  child->sum_nanos.fetch_add(static_cast<uint64_t>(v * 1e9), std::memory_order_relaxed);
}

uint64_t HistogramFamily::Count(const std::vector<std::string>& values) const {
  ReaderMutexLock lock(&mu_);
  auto it = children_.find(Key(values));
  return it == children_.end() ? 0 : it->second->count.load();
}

void HistogramFamily::Render(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " histogram\n");
  ReaderMutexLock lock(&mu_);
  std::vector<std::string> keys;
  for (const auto& [k, c] : children_) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  for (const auto& k : keys) {
    const Child& c = *children_.at(k);
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += c.buckets[i].load();
      std::string le = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
      absl::StrAppend(&out, name_, "_bucket",
                      LabelText(labels_, k, absl::StrCat("le=\"", le, "\"")), " ", cumulative,
                      "\n");
    }
    absl::StrAppend(&out, name_, "_sum", LabelText(labels_, k), " ",
                    Number(static_cast<double>(c.sum_nanos.load()) / 1e9), "\n");
    absl::StrAppend(&out, name_, "_count", LabelText(labels_, k), " ", c.count.load(), "\n");
  }
}

void RenderGauge(std::string& out, const std::string& name, const std::string& help, double value) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n", name, " ",
                  Number(value), "\n");
}

}  // namespace quotum::obs
