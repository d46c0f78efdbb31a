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
/** A manual refresh of the panels is allowed once per this. */
export const MANUAL_REFRESH_GAP_MS = 10_000;

/** Requests per minute the general rule allows. */
export function perMinute(limit: number, windowSeconds: number): number {
  return (limit * 60) / windowSeconds;
}

/// The interval between two reads of usage/current: the share of the general
/// rule left after the panels' reads, spread evenly, rounded up to 0.5 s.
/// With no rule known yet (first reply), the fastest interval.
export function usageIntervalMs(rule: { limit: number; windowSeconds: number } | null): number {
  if (!rule) return FASTEST_MS;
  const panelsPerMinute = (PANEL_ROUTES * 60_000) / PANEL_PERIOD_MS;
  const forUsage = perMinute(rule.limit, rule.windowSeconds) * BUDGET_SHARE - panelsPerMinute;
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
