#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "quotum/base/mutex.h"

namespace quotum::obs {

/// A family of counters sharing a name and label names, one child per label
/// value tuple. Thread-safe; Add is lock-free once a child exists (reader lock
/// to find it).
class CounterFamily {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> labels);

  /// Adds `n` to the child with these label values (in label-name order).
  void Add(const std::vector<std::string>& values, uint64_t n = 1);
  /// The child's counter, created if needed. Children are never removed, so
  /// the pointer stays valid for the family's life: hot paths keep it and
  /// increment it directly (relaxed) without a lookup.
  std::atomic<uint64_t>* Child(const std::vector<std::string>& values);
  uint64_t Value(const std::vector<std::string>& values) const;
  /// Appends the family in Prometheus text format.
  void Render(std::string& out) const;

 private:
  std::string name_, help_;
  std::vector<std::string> labels_;
  mutable SharedMutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<std::atomic<uint64_t>>> children_
      ABSL_GUARDED_BY(mu_);
};

/// Upper bounds, in seconds, suited to sub-millisecond work.
inline const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> b = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,    0.025,  0.05,    0.1,    0.5,   1.0,    5.0};
  return b;
}

/// Upper bounds for counts (e.g. requests per group commit).
inline const std::vector<double>& SizeBuckets() {
  static const std::vector<double> b = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
  return b;
}

/// A family of histograms with fixed bucket bounds. Thread-safe.
class HistogramFamily {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> bounds);

  struct Child;
  void Observe(const std::vector<std::string>& values, double v);
  /// The child for these label values, created if needed; never removed, so
  /// hot paths keep the pointer and call ObserveChild(child, v) without a lookup.
  Child* GetChild(const std::vector<std::string>& values);
  void ObserveChild(Child* child, double v);
  /// Observations of one child (for tests).
  uint64_t Count(const std::vector<std::string>& values) const;
  void Render(std::string& out) const;

 public:
  struct Child {
    explicit Child(size_t n) : buckets(n + 1) {}
    std::vector<std::atomic<uint64_t>> buckets;  // last = +Inf
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_nanos{0};  // sum in units of 1e-9
  };

 private:
  std::string name_, help_;
  std::vector<std::string> labels_;
  std::vector<double> bounds_;
  mutable SharedMutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Child>> children_ ABSL_GUARDED_BY(mu_);
};

/// Appends a single gauge sample with its HELP and TYPE lines.
void RenderGauge(std::string& out, const std::string& name, const std::string& help, double value);

/// Escapes a label value for the text format.
std::string EscapeLabel(const std::string& v);

}  // namespace quotum::obs
