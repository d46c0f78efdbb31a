// The API as the dashboard reads it: same origin, the key in the Authorization
// header only, and the general rate rule read off each reply. An admin viewing a
// tenant sends the admin key plus X-Quotum-Tenant, and may only read.

export type Band = 'green' | 'yellow' | 'red';

export interface MeterUsage {
  kind: 'counter' | 'gauge';
  used: number;
  limit: number | null;
  remaining: number | null;
  percentage: number;
  band: Band;
  enforced: boolean;
  on_limit: string;
  /** Counter meters only; null when the daily series could not be read. */
  forecast?: Forecast | null;
}

/** How the forecast found its daily pace (docs/alerts.md, "Forecast"). */
export type ForecastMethod = 'no_data' | 'today_pace' | 'ewma7+today' | 'ewma7' | 'ewma7+weekday';

/** A counter projected to its period's end. */
export interface Forecast {
  projected_period_end: number;
  /** Of the limit, one decimal; null when unlimited. */
  projected_percentage: number | null;
  /** Null when the projection stays within the limit, when unlimited, or when the limit is reached already. */
  limit_reached_at: string | null;
  method: ForecastMethod | string;
  /** Top-level forecast only: the plan that fits the projection with headroom_percent to spare; null when none does. */
  recommended_plan?: string | null;
  headroom_percent?: number;
}

export interface CurrentUsage {
  tenant_id: string;
  plan: string;
  period: string;
  period_start: string;
  period_end: string;
  source: 'live' | 'aggregate';
  usage_percentage: number;
  band: Band;
  meters: Record<string, MeterUsage>;
  /** Add-ons that have not ended; their units are in the meters' limits already. */
  addons: Addon[];
  /** Top-ups that have not expired, oldest expiry first; their units are in the meters' limits already. */
  topups: Topup[];
  /** A downgrade waiting for the period's end. */
  pending_plan: PendingPlan | null;
  /** messages_sent's forecast with recommended_plan; null when the daily series could not be read. */
  forecast?: Forecast | null;
}

export type DailyRow = { date: string } & Record<string, number>;

export interface HistoryPeriod {
  period: string;
  period_start: string;
  period_end: string;
  status: 'current' | 'closed';
  [meter: string]: string | number;
}

export type HourRow = { hour: string } & Record<string, number>;

export interface Channels {
  meter: string;
  total: number;
  channels: Record<string, number>;
  /** The range's first and last UTC days. */
  from: string;
  to: string;
  meters: Record<string, { total: number; channels: Record<string, number> }>;
}

/** A file the server sent as an attachment. */
export interface Download {
  blob: Blob;
  filename: string;
}

export interface Session {
  id: string;
  phone: string;
  status: string;
  created_at: string;
  last_heartbeat: string;
  lease_expires_at: string | null;
  warmup: { cap_today: number; sent_today: number } | null;
  /** On a plan with messaging tiers (docs/api.md "Messaging tiers"); null otherwise. */
  messaging_tier: MessagingTier | null;
}

/** A session's cap of unique recipients per rolling 24 hours, and its next step. */
export interface MessagingTier {
  /** 0 for the first step. */
  level: number;
  /** Unique recipients per rolling 24 hours; null: unlimited. */
  limit: number | null;
  used_24h: number;
  unique_7d: number;
  /** Null once unlimited. */
  next: {
    /** The next level's cap; null: unlimited. */
    limit: number | null;
    /** Unique recipients over 7 days still needed to qualify; 0 once qualified. */
    needed: number;
    /** When the step takes effect; null while not qualified. */
    at: string | null;
  } | null;
}

export interface QuotumEvent {
  type: string;
  subject: string;
  detail: string;
  at: string;
}

export interface Plan {
  name: string;
  display_name: string;
  /** Per period; -1: priced by contract (an administrator changes it). */
  price_cents: number;
  /** The plan's limit per meter; a meter not listed has none. */
  limits: Record<string, number>;
  rate_limit_profile: string;
}

export interface PendingPlan {
  id: string;
  plan: string;
  requested_at: string;
  effective_at: string;
}

export interface Addon {
  id: string;
  meter: string;
  units: number;
  /** Per period. */
  price_cents: number;
  started_at: string;
  /** Null while it renews; once cancelled, the end of the period it was cancelled in. */
  ends_at: string | null;
}

/** A one-off prepaid pack (POST /api/v2/topups). */
export interface Topup {
  id: string;
  meter: string;
  units: number;
  /** The units not used yet. */
  balance: number;
  /** Charged once, when bought. */
  price_cents: number;
  bought_at: string;
  /** Null: it never lapses. */
  expires_at: string | null;
}

export type ChangeKind = 'upgrade' | 'downgrade' | 'addon_added' | 'addon_cancelled' | 'topup_added';

/** A line of the subscription's ledger. */
export interface SubscriptionChange {
  id: string;
  kind: ChangeKind;
  from: string;
  to: string;
  actor: 'tenant' | 'admin';
  requested_at: string;
  effective_at: string;
  /** Charged (negative: credited) when applied. */
  proration_cents: number;
  state: 'pending' | 'applied' | 'cancelled';
}

export interface Subscription {
  tenant_id: string;
  plan: string;
  price_cents: number;
  period_start: string;
  period_end: string;
  pending_plan: PendingPlan | null;
  /** Newest first. */
  changes: SubscriptionChange[];
}

export interface PlanChangePreview {
  kind: 'upgrade' | 'downgrade' | 'same';
  from: string;
  to: string;
  effective_at: string;
  /** Charged now: 0 for a downgrade or the same plan. */
  proration_cents: number;
  new_price_cents: number;
  /** Every limitable meter's limit on the new plan; null: unlimited. */
  new_limits: Record<string, number | null>;
}

/** A usage threshold reached (GET /api/v2/alerts). */
export interface Alert {
  meter: string;
  /** Percent of the limit. */
  threshold: number;
  /** The counter after the decision that crossed the threshold. */
  value: number;
  limit: number;
  period: string;
  period_start: string;
  period_end: string;
  at: string;
  /** Set when a grown limit made the threshold stop holding. */
  resolved_at: string | null;
}

export interface AlertList {
  /** The range's first and last UTC days. */
  from: string;
  to: string;
  /** Oldest first. */
  alerts: Alert[];
}

export interface Webhook {
  id: string;
  url: string;
  events: string[];
  created_at: string;
}

/** POST /api/v2/webhooks's answer: the only time the signing secret is shown. */
export interface CreatedWebhook extends Webhook {
  secret: string;
}

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  status: number;
  error: string;
  took_ms: number;
}

export interface Delivery {
  id: string;
  event_id: string;
  state: 'pending' | 'delivered' | 'dead';
  attempts: number;
  /** The last attempt's HTTP status; 0 when no answer came. */
  last_status: number;
  last_error: string;
  created_at: string;
  next_attempt_at: string | null;
  finished_at: string | null;
  attempt_log: DeliveryAttempt[];
}

/** A usage event of GET /api/v2/usage/stream: every meter when `full`, else the changed ones. */
export interface StreamUsage {
  tenant_id: string;
  plan: string;
  period: string;
  period_start: string;
  period_end: string;
  source: 'live' | 'aggregate';
  full: boolean;
  meters: Record<string, MeterUsage>;
}

/** A tenant of GET /admin/risk, at its riskiest limited counter meter. */
export interface RiskTenant {
  id: string;
  name: string;
  plan: string;
  /** The highest of the meters' current and projected percentages. */
  risk_percent: number;
  meter: string;
  used: number;
  limit: number;
  percentage: number;
  band: Band;
  forecast: { meter: string; projected_percentage: number; limit_reached_at: string | null } | null;
  alerts: number;
  period_end: string;
}

export interface RiskReport {
  generated_at: string;
  /** Tenants looked at; `tenants` holds the riskiest `limit` of them. */
  considered: number;
  tenants: RiskTenant[];
}

/// The general rule as the last reply's RateLimit-Policy and RateLimit headers told it.
export interface GeneralRule {
  limit: number;
  windowSeconds: number;
  remaining: number;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds to wait before asking again (429), else 0. */
    readonly retryAfter: number,
  ) {
    super(message);
  }
}

type Params = Record<string, string>;

/// Parses a structured list such as `"general";q=100;w=60, "quota";q=10;w=2592000`
/// into name -> parameters.
export function parseRateHeader(value: string | null): Map<string, Params> {
  const out = new Map<string, Params>();
  if (!value) return out;
  for (const item of value.split(',')) {
    const [rawName, ...rest] = item.trim().split(';');
    const name = rawName.trim().replace(/^"|"$/g, '');
    const params: Params = {};
    for (const p of rest) {
      const [k, v] = p.split('=');
      if (k && v !== undefined) params[k.trim()] = v.trim();
    }
    if (name) out.set(name, params);
  }
  return out;
}

export function generalRuleOf(headers: Headers): GeneralRule | null {
  const policy = parseRateHeader(headers.get('RateLimit-Policy')).get('general');
  const state = parseRateHeader(headers.get('RateLimit')).get('general');
  const limit = Number(policy?.q);
  const windowSeconds = Number(policy?.w);
  if (!(limit > 0) || !(windowSeconds > 0)) return null;
  const remaining = Number(state?.r);
  return { limit, windowSeconds, remaining: Number.isFinite(remaining) ? remaining : limit };
}

export class Client {
  /** The general rule from the latest reply that carried it. */
  general: GeneralRule | null = null;

  /** `tenant`: the admin key reads that tenant's routes (X-Quotum-Tenant), read only. */
  constructor(
    private readonly key: string,
    readonly tenant: string | null = null,
  ) {}

  /** An admin viewing a tenant: GET only (the server answers 403 read_only to the rest). */
  get readOnly(): boolean {
    return this.tenant !== null;
  }

  async get<T>(path: string): Promise<T> {
    const res = await this.fetch(path, 'application/json');
    return (await res.json()) as T;
  }

  /** A POST or DELETE with an optional JSON body; the JSON answer. */
  async send<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    if (this.readOnly) throw new ApiError(403, 'read_only', 'An admin viewing a tenant may only read.', 0);
    const res = await this.fetch(path, 'application/json', method, body);
    return (await res.json()) as T;
  }

  /** An export, as a Blob with the file name of its Content-Disposition. */
  async download(path: string, fallbackName: string): Promise<Download> {
    const res = await this.fetch(path, '*/*');
    const named = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') ?? '');
    return { blob: await res.blob(), filename: named?.[1] ?? fallbackName };
  }

  /** An event stream (its body unread), the last event's id as Last-Event-ID; `signal` ends it. */
  async stream(path: string, lastEventId: string, signal: AbortSignal): Promise<Response> {
    const extra: Record<string, string> = lastEventId ? { 'Last-Event-ID': lastEventId } : {};
    return this.fetch(path, 'text/event-stream', 'GET', undefined, extra, signal);
  }

  /** Sends the key in the Authorization header only; throws ApiError unless 2xx. */
  private async fetch(
    path: string,
    accept: string,
    method = 'GET',
    body?: unknown,
    extra: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.key}`, Accept: accept, ...extra };
    if (this.tenant !== null) headers['X-Quotum-Tenant'] = this.tenant;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal,
    });
    const rule = generalRuleOf(res.headers);
    if (rule) this.general = rule;
    if (!res.ok) {
      const body: unknown = await res.json().catch(() => null);
      const err = (body ?? {}) as { code?: string; error?: string };
      const retry = Number(res.headers.get('Retry-After') ?? 0);
      throw new ApiError(
        res.status,
        err.code ?? 'http_error',
        err.error ?? `The server answered ${res.status}.`,
        Number.isFinite(retry) ? retry : 0,
      );
    }
    return res;
  }
}
