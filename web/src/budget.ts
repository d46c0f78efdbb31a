// How often the dashboard may ask, so that it never spends more than a fixed
// share of the key's general rate limit (the rest is the tenant's own traffic).
// See docs/dashboard.md, "Polling budget".

/** The dashboard uses at most this share of the general rule. */
export const BUDGET_SHARE = 0.5;
/** usage/current is never asked more often than this: a change shows within 2 s
 *  (this interval plus the request and the drawing) where the budget allows it. */
export const FASTEST_MS = 1_500;
/** ... nor less often than this, whatever the limit. */
export const SLOWEST_MS = 30_000;
/** The panels' routes (daily, hourly, history, channels, sessions, events, alerts), asked together. */
export const PANEL_ROUTES = 7;
export const PANEL_PERIOD_MS = 60_000;
/** Requests per minute kept for the usage stream's (re)connections (stream.ts: at most one a
 *  minute once its backoff has grown; while it is open, none). */
export const STREAM_PER_MINUTE = 1;
/** A manual refresh of the panels is allowed once per this. */
export const MANUAL_REFRESH_GAP_MS = 10_000;

/** Requests per minute the general rule allows. */
export function perMinute(limit: number, windowSeconds: number): number {
  return (limit * 60) / windowSeconds;
}

/// The interval between two reads of usage/current: the share of the general
/// rule left after the panels' reads and the stream's reserve, spread evenly,
/// rounded up to 0.5 s. It holds while the stream is live too: the stream's events
/// carry the meters only, and the polls bring the rest (forecast, add-ons, pending plan).
/// With no rule known yet (first reply), the fastest interval.
export function usageIntervalMs(rule: { limit: number; windowSeconds: number } | null): number {
  if (!rule) return FASTEST_MS;
  const panelsPerMinute = (PANEL_ROUTES * 60_000) / PANEL_PERIOD_MS;
  const forUsage = perMinute(rule.limit, rule.windowSeconds) * BUDGET_SHARE - panelsPerMinute - STREAM_PER_MINUTE;
  if (forUsage <= 0) return SLOWEST_MS;
  const ms = Math.ceil(60_000 / forUsage / 500) * 500;
  return Math.min(SLOWEST_MS, Math.max(FASTEST_MS, ms));
}

/// When another client of the same key has used most of the rule (less than a
/// fifth left), the dashboard slows down further, doubling up to SLOWEST_MS.
export function backedOffMs(intervalMs: number, remaining: number, limit: number): number {
  if (limit > 0 && remaining < limit / 5) return Math.min(SLOWEST_MS, intervalMs * 2);
  return intervalMs;
}
