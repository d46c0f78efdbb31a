#pragma once

#include "quotum/obs/metrics.h"

namespace quotum::engine {

/// The engine's metrics, declared in one place.
struct EngineStats {
  obs::CounterFamily decisions{
      "quotum_decisions_total",
      "Decisions by meter (none for requests that charge no meter), outcome (allowed, denied, "
      "shadow_denied) and the rule that refused or would have refused (none when allowed).",
      {"meter", "outcome", "rule"}};
  obs::HistogramFamily commit_seconds{"quotum_store_commit_duration_seconds",
                                      "Latency of one group commit (one store transaction).",
                                      {},
                                      obs::LatencyBuckets()};
  obs::HistogramFamily commit_batch{"quotum_store_commit_batch_requests",
                                    "Requests completed by one group commit.",
                                    {},
                                    obs::SizeBuckets()};
  obs::CounterFamily commit_failures{
      "quotum_store_commit_failures_total",
      "Group commits that failed; their requests were answered 503 and undone.",
      {}};
  obs::CounterFamily journal_writes{
      "quotum_journal_writes_total",
      "Embedded mode: writes of an I/O thread's journal (one per batch of decisions) by "
      "outcome: ok, or failed (those decisions waited for the store's group commit instead).",
      {"outcome"}};
  obs::CounterFamily journal_records{
      "quotum_journal_records_total",
      "Embedded mode: decisions acknowledged once written to a journal; replayed counts the "
      "records a start-up found in the journals and committed to the store.",
      {"kind"}};
  obs::CounterFamily facts_applied{
      "quotum_facts_applied_total",
      "Scale-out mode: decisions' facts (usage rows, messages) moved from the Redis stream into "
      "the cold store by this instance.",
      {}};
  obs::CounterFamily fail_open_decisions{
      "quotum_fail_open_decisions_total",
      "Scale-out mode, fail-open policy: requests admitted unchecked while Redis was "
      "unavailable, recorded in the cold store for reconciliation.",
      {}};
  obs::CounterFamily fail_open_reconciled{
      "quotum_fail_open_reconciled_total",
      "Scale-out mode: fail-open charges this instance counted into Redis once it was back.",
      {}};
  obs::CounterFamily facts_sweeps{
      "quotum_facts_sweeps_total",
      "Scale-out mode: sweeps of every tenant's facts stream this instance ran while holding "
      "the sweep lease (one instance at a time).",
      {}};
  obs::CounterFamily facts_drain_failures{
      "quotum_facts_drain_failures_total",
      "Scale-out mode: drain rounds that stopped on a Redis or cold-store error; what they had "
      "not applied waits in the stream and is retried.",
      {}};
  obs::CounterFamily lease_expiries{
      "quotum_session_lease_expiries_total",
      "Working sessions that stopped counting for lack of heartbeats.",
      {}};
  obs::CounterFamily webhook_attempts{
      "quotum_webhook_attempts_total",
      "Webhook delivery attempts by outcome: delivered (a 2xx), retry (failed, tried again "
      "later) or dead (failed for the last time).",
      {"outcome"}};
  obs::CounterFamily emails{
      "quotum_emails_total",
      "Alert and report e-mails (mailto: webhooks) by outcome: sent (the SMTP server accepted "
      "it) or failed (an attempt that did not get through; it is retried like any delivery).",
      {"outcome"}};
  obs::CounterFamily reconcile_runs{"quotum_reconcile_syncs_total",
                                    "Nightly syncs this instance ran (and POST /admin/reconcile).",
                                    {}};
  obs::CounterFamily reconcile_flagged{
      "quotum_reconcile_flagged_total",
      "Counters found drifted past [reconcile] flag_percent by the syncs this instance ran.",
      {}};
  obs::CounterFamily deliveries{
      "quotum_message_deliveries_total",
      "Hand-offs of released messages to the delivery provider by provider (log, http) and "
      "outcome: sent, retry (failed, tried again later) or failed (for the last time).",
      {"provider", "outcome"}};
  obs::CounterFamily given_back{
      "quotum_messages_given_back_total",
      "Failed messages whose charge was given back ([delivery] give_back).",
      {}};
  obs::CounterFamily queue_releases{
      "quotum_message_releases_total",
      "Queued messages (scheduled, held at a limit, a bulk's rest) admitted and charged by the "
      "releaser.",
      {}};
  obs::CounterFamily relay_failures{
      "quotum_outbox_relay_failures_total",
      "Outbox relay rounds that failed (the store away, a commit refused); retried next round.",
      {}};
};

}  // namespace quotum::engine
