// The forecast and alerts panel: messages_sent projected to the period's end (from
// usage/current's `forecast`), the usage thresholds reached this period, and the
// tenant's webhooks with their latest deliveries, a form to add one (its signing
// secret shown once) and a delete button.
//
// Requests: the forecast adds none (it comes with each usage/current read). The alerts
// are one of the panels' routes, read with them every minute and on "Refresh"
// (readAlerts, called by main.ts's poller hook), and once more at once when a usage read
// shows a counter's limit or the period changed (an upgrade or an add-on resolves
// thresholds). The webhooks and their deliveries are read at sign-in and on "Refresh
// deliveries" (a user's action, at most once per 10 s); adding or deleting one is one
// request and re-reads nothing.
import { ApiError } from '../api';
import type { Alert, AlertList, Client, CreatedWebhook, CurrentUsage, Delivery, Forecast, Webhook } from '../api';
import { MANUAL_REFRESH_GAP_MS } from '../budget';
import { byId, clockTime, el, meterTitle, num, when } from '../format';

export interface AlertsHooks {
  /** The key was refused: sign out. */
  unauthorized(message: string): void;
  /** False once the tab has signed out (an answer that lands then draws nothing). */
  alive(): boolean;
  /** A plan's display name ("Pro" for "pro"), as the plan panel knows it. */
  planName(name: string): string;
}

/** The event types a webhook may ask for (docs/openapi.yaml, createWebhook). */
export const EVENT_TYPES = [
  'usage.threshold_reached',
  'usage.threshold_resolved',
  'session.lease_expired',
  'subscription.changed',
  'subscription.change_scheduled',
  'subscription.change_cancelled',
  'subscription.addon_added',
  'subscription.addon_cancelled',
  'subscription.topup_added',
  'usage.forecast_exceeds_limit',
  'usage.report.weekly',
  'usage.report.monthly',
];

const METHOD_WORDS: Record<string, string> = {
  no_data: 'No usage yet',
  today_pace: 'Today’s pace (no complete day yet)',
  'ewma7+today': 'The first complete day and today, pooled',
  ewma7: 'Weighted daily pace, half-life 7 days',
  'ewma7+weekday': 'Weighted daily pace, half-life 7 days, with weekday factors',
};

const DELIVERY_WORDS: Record<Delivery['state'], string> = {
  delivered: 'Delivered',
  pending: 'Pending',
  dead: 'Dead',
};

/** How many deliveries a webhook shows, newest first (the route answers up to 50). */
const DELIVERY_LINES = 5;

const FORECAST_METER = 'messages_sent';

function table(caption: string, head: string[], rows: (string | HTMLElement)[][]): HTMLElement {
  const t = el('table');
  t.append(el('caption', 'visually-hidden', caption));
  const tr = el('tr');
  for (const h of head) {
    const th = el('th', '', h);
    th.scope = 'col';
    tr.append(th);
  }
  const thead = el('thead');
  thead.append(tr);
  const tbody = el('tbody');
  for (const r of rows) {
    const row = el('tr');
    r.forEach((cell, i) => {
      const td = el(i === 0 ? 'th' : 'td');
      if (i === 0) (td as HTMLTableCellElement).scope = 'row';
      td.append(cell);
      row.append(td);
    });
    tbody.append(row);
  }
  t.append(thead, tbody);
  return t;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${num(n)} ${n === 1 ? one : many}`;

/** The events a webhook asked for, in words. */
export const eventsWords = (events: string[]): string =>
  events.includes('*') ? 'All events (*)' : events.join(', ');

/** What a usage read says about the alerts: when it changes, they are read again at once. */
function signature(u: CurrentUsage): string {
  const limits = Object.entries(u.meters)
    .filter(([, m]) => m.kind === 'counter')
    .map(([name, m]) => `${name}:${m.limit ?? '-'}`)
    .sort();
  return [u.period_start, ...limits].join('|');
}

export class AlertsPanel {
  private usage: CurrentUsage | null = null;
  private seen = '';
  private alerts: Alert[] | null = null;
  private webhooks: Webhook[] = [];
  /** Per webhook id: its deliveries, newest first, or the message of a failed read. */
  private deliveries = new Map<string, Delivery[] | string>();
  /** The webhook whose Delete was pressed once and waits for its confirmation. */
  private confirming = '';

  constructor(
    private readonly client: Client,
    private readonly hooks: AlertsHooks,
  ) {
    const events = byId<HTMLSelectElement>('webhook-events');
    if (events.options.length === 0) {
      events.append(
        new Option('All events (*)', '*', true, true),
        ...EVENT_TYPES.map((t) => new Option(t, t)),
      );
    }
    byId<HTMLFormElement>('webhook-form').onsubmit = (ev) => {
      ev.preventDefault();
      void this.add();
    };
    byId('webhook-secret-hide').onclick = () => {
      hideSecret();
      byId('webhook-url').focus();
    };
    const refresh = byId<HTMLButtonElement>('webhook-refresh');
    refresh.onclick = () => {
      if (refresh.disabled) return;
      refresh.disabled = true;
      window.setTimeout(() => (refresh.disabled = false), MANUAL_REFRESH_GAP_MS);
      void this.loadWebhooks();
    };
  }

  /** The webhooks and their deliveries, read at sign-in. */
  async load(): Promise<void> {
    await this.loadWebhooks();
  }

  /** Each usage read: the forecast (`polled`: it came with this read, not a stream push,
   *  whose older forecast may not fit a new limit), and the alerts again when a limit or
   *  the period changed. */
  update(u: CurrentUsage, polled = true): void {
    this.usage = u;
    if (polled) this.drawForecast(u);
    const now = signature(u);
    if (now === this.seen) return;
    const first = this.seen === '';
    this.seen = now;
    // The first read's alerts come with the panels' first read (the poller's start).
    if (!first) void this.readAlerts().catch((e: unknown) => this.fail(e, 'The alerts could not be read'));
    else this.drawAlerts();
  }

  /** GET /api/v2/alerts for the current period; throws (the poller shows it, a 401 signs out). */
  async readAlerts(): Promise<void> {
    const list = await this.client.get<AlertList>('/api/v2/alerts?range=period');
    if (!this.hooks.alive()) return;
    this.alerts = list.alerts;
    this.drawAlerts();
    byId('alerts-updated').textContent = `Alerts read ${clockTime(new Date())}; every minute.`;
  }

  private drawForecast(u: CurrentUsage): void {
    const f: Forecast | null = u.forecast ?? null;
    const facts = byId('forecast-facts');
    const note = byId('forecast-note');
    if (!f) {
      facts.hidden = true;
      note.textContent = 'No forecast now: the daily usage could not be read.';
      return;
    }
    note.textContent = '';
    facts.hidden = false;
    const meter = u.meters[FORECAST_METER];
    const limit = meter?.limit ?? null;
    const projected = byId('forecast-projected');
    projected.textContent =
      limit === null || f.projected_percentage === null
        ? `${num(f.projected_period_end)} (no limit on this plan)`
        : `${num(f.projected_period_end)} (${f.projected_percentage.toFixed(1)} % of ${num(limit)})`;
    projected.dataset.value = String(f.projected_period_end);

    const reached = byId('forecast-reached');
    if (limit === null) reached.textContent = 'No limit on this plan';
    else if ((meter?.used ?? 0) >= limit) reached.textContent = 'Reached already';
    else if (f.limit_reached_at) reached.textContent = `On ${when(f.limit_reached_at)}`;
    else reached.textContent = 'Not this period';

    const method = byId('forecast-method');
    method.dataset.method = f.method;
    method.replaceChildren(`${METHOD_WORDS[f.method] ?? f.method} `, el('code', 'muted', f.method));

    const recommended = f.recommended_plan ?? null;
    byId('forecast-plan-row').hidden = recommended === null;
    const plan = byId('forecast-plan');
    plan.dataset.plan = recommended ?? '';
    if (recommended === null) plan.textContent = '';
    else if (recommended === u.plan) plan.textContent = `Stay on ${this.hooks.planName(recommended)}`;
    else {
      plan.textContent =
        `${this.hooks.planName(recommended)}: the cheapest plan whose limits fit the projection ` +
        `with ${f.headroom_percent ?? 20} % to spare`;
    }
  }

  /** The current period's alerts (range=period may reach into the day the last one ended). */
  private drawAlerts(): void {
    const box = byId('alert-list');
    if (this.alerts === null) {
      box.replaceChildren();
      return;
    }
    const start = this.usage ? Date.parse(this.usage.period_start) : NaN;
    const mine = Number.isNaN(start) ? this.alerts : this.alerts.filter((a) => Date.parse(a.period_start) === start);
    if (mine.length === 0) {
      box.replaceChildren(el('p', 'muted', 'No thresholds reached this period.'));
      return;
    }
    // Three columns, the threshold under the meter and the resolution under the time
    // reached, so that the table fits 375 px.
    const rows = mine.map((a) => {
      const reached = el('span', 'change');
      const at = el('time', '', when(a.at));
      at.dateTime = a.at;
      reached.append(at);
      if (a.resolved_at) {
        const resolved = el('span', 'resolved');
        const time = el('time', 'muted', when(a.resolved_at));
        time.dateTime = a.resolved_at;
        resolved.append(el('span', 'status-chip a-resolved', 'Resolved'), ' ', time);
        reached.append(resolved);
      }
      const what = el('span', 'change');
      what.append(el('span', '', meterTitle(a.meter)), el('span', 'threshold', `${a.threshold} %`));
      return [what, `${num(a.value)} / ${num(a.limit)}`, reached];
    });
    const t = table('Usage thresholds reached this period', ['Meter, threshold', 'Value / limit', 'Reached'], rows);
    t.querySelectorAll('tbody tr').forEach((tr, i) => {
      const a = mine[i];
      (tr as HTMLElement).dataset.meter = a.meter;
      (tr as HTMLElement).dataset.threshold = String(a.threshold);
      if (a.resolved_at) (tr as HTMLElement).dataset.resolved = '';
    });
    box.replaceChildren(t);
  }

  private async loadWebhooks(): Promise<void> {
    try {
      const list = await this.client.get<{ webhooks: Webhook[] }>('/api/v2/webhooks');
      const reads = await Promise.allSettled(
        list.webhooks.map((w) =>
          this.client.get<{ deliveries: Delivery[] }>(`/api/v2/webhooks/${encodeURIComponent(w.id)}/deliveries`),
        ),
      );
      if (!this.hooks.alive()) return;
      const refused = reads.find((r) => r.status === 'rejected' && r.reason instanceof ApiError && r.reason.status === 401);
      if (refused) throw (refused as PromiseRejectedResult).reason;
      this.webhooks = list.webhooks;
      this.deliveries.clear();
      reads.forEach((r, i) => {
        const id = list.webhooks[i].id;
        if (r.status === 'fulfilled') this.deliveries.set(id, r.value.deliveries);
        else this.deliveries.set(id, r.reason instanceof Error ? r.reason.message : 'no answer');
      });
      byId('alerts-error').textContent = '';
      this.drawWebhooks();
      byId('webhook-status').textContent = `Deliveries read ${clockTime(new Date())}.`;
    } catch (e) {
      this.fail(e, 'The webhooks could not be read');
    }
  }

  private drawWebhooks(): void {
    const box = byId('webhook-list');
    if (this.webhooks.length === 0) {
      box.replaceChildren(el('p', 'muted', 'No webhooks yet.'));
      return;
    }
    const list = el('ul', 'webhooks');
    for (const w of this.webhooks) list.append(this.webhookItem(w));
    box.replaceChildren(list);
  }

  private webhookItem(w: Webhook): HTMLElement {
    const li = el('li');
    li.dataset.webhook = w.id;
    const head = el('div', 'webhook-head');
    const what = el('div', 'webhook-what');
    what.append(
      el('strong', 'webhook-url', w.url),
      el('span', 'webhook-events', eventsWords(w.events)),
      el('span', 'muted', `Added ${when(w.created_at)}`),
    );
    const actions = el('div', 'webhook-actions');
    if (this.confirming === w.id) {
      const yes = el('button', '', 'Confirm delete');
      yes.type = 'button';
      yes.setAttribute('aria-label', `Confirm: delete the webhook to ${w.url}`);
      yes.onclick = () => void this.remove(w, yes);
      const no = el('button', 'secondary', 'Keep');
      no.type = 'button';
      no.setAttribute('aria-label', `Keep the webhook to ${w.url}`);
      no.onclick = () => {
        this.confirming = '';
        this.drawWebhooks();
        this.focusDelete(w.id);
      };
      actions.append(yes, no);
    } else {
      const del = el('button', 'secondary', 'Delete');
      del.type = 'button';
      del.setAttribute('aria-label', `Delete the webhook to ${w.url}`);
      del.onclick = () => {
        this.confirming = w.id;
        this.drawWebhooks();
        this.focusDelete(w.id);
      };
      actions.append(del);
    }
    head.append(what, actions);
    li.append(head, this.deliveryList(w.id));
    return li;
  }

  /** Focuses the first button of a webhook's row (Delete, or Confirm delete). */
  private focusDelete(id: string): void {
    byId('webhook-list').querySelector<HTMLButtonElement>(`li[data-webhook="${CSS.escape(id)}"] button`)?.focus();
  }

  private deliveryList(id: string): HTMLElement {
    const got = this.deliveries.get(id);
    if (got === undefined || (Array.isArray(got) && got.length === 0)) {
      return el('p', 'muted deliveries-none', 'No deliveries yet.');
    }
    if (typeof got === 'string') return el('p', 'error', `The deliveries could not be read: ${got}`);
    const box = el('div', 'deliveries');
    const count = (s: Delivery['state']): number => got.filter((d) => d.state === s).length;
    box.append(
      el(
        'p',
        'muted',
        `Latest ${plural(got.length, 'delivery', 'deliveries')}: ` +
          `${num(count('delivered'))} delivered, ${num(count('pending'))} pending, ${num(count('dead'))} dead.`,
      ),
    );
    const list = el('ol', 'delivery-list');
    for (const d of got.slice(0, DELIVERY_LINES)) {
      const li = el('li');
      li.dataset.state = d.state;
      const time = el('time', 'muted', when(d.created_at));
      time.dateTime = d.created_at;
      let detail = '';
      if (d.state === 'delivered') detail = `HTTP ${d.last_status}`;
      else if (d.state === 'pending') {
        const last = d.last_error || (d.last_status ? `HTTP ${d.last_status}` : '');
        detail = [d.next_attempt_at ? `next attempt ${when(d.next_attempt_at)}` : '', last ? `last: ${last}` : '']
          .filter(Boolean)
          .join('; ');
      } else detail = d.last_error || (d.last_status ? `HTTP ${d.last_status}` : 'no answer');
      li.append(
        el('span', `status-chip d-${d.state}`, DELIVERY_WORDS[d.state] ?? d.state),
        el('span', 'delivery-attempts', plural(d.attempts, 'attempt')),
        time,
      );
      if (detail) li.append(el('span', 'delivery-detail', detail));
      list.append(li);
    }
    box.append(list);
    return box;
  }

  private async add(): Promise<void> {
    const button = byId<HTMLButtonElement>('webhook-add');
    const input = byId<HTMLInputElement>('webhook-url');
    const url = input.value.trim();
    const events = byId<HTMLSelectElement>('webhook-events').value || '*';
    if (button.disabled) return;
    this.setError('');
    byId('webhook-status').textContent = '';
    if (!url) {
      this.setError('Enter the URL to send the events to.');
      input.focus();
      return;
    }
    hideSecret();
    button.disabled = true;
    try {
      const created = await this.client.send<CreatedWebhook>('POST', '/api/v2/webhooks', { url, events: [events] });
      if (!this.hooks.alive()) return;
      const { secret, ...webhook } = created;
      this.webhooks = [...this.webhooks.filter((w) => w.id !== webhook.id), webhook];
      this.deliveries.set(webhook.id, []);
      this.drawWebhooks();
      input.value = '';
      byId('webhook-secret-for').textContent = `The signing secret of the webhook to ${webhook.url}:`;
      byId('webhook-secret-value').textContent = secret;
      const box = byId('webhook-secret');
      box.hidden = false;
      byId('webhook-secret-hide').focus();
    } catch (e) {
      this.fail(e, 'The webhook was not added', 'webhook-error');
    } finally {
      button.disabled = false;
    }
  }

  private async remove(w: Webhook, button: HTMLButtonElement): Promise<void> {
    if (button.disabled) return;
    this.setError('');
    button.disabled = true;
    try {
      await this.client.send<{ deleted: string }>('DELETE', `/api/v2/webhooks/${encodeURIComponent(w.id)}`);
      if (!this.hooks.alive()) return;
      byId('webhook-status').textContent = `Deleted the webhook to ${w.url}.`;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        button.disabled = false;
        this.fail(e, 'The webhook was not deleted', 'webhook-error');
        return;
      }
      // Deleted elsewhere meanwhile: it is gone all the same.
      byId('webhook-status').textContent = `The webhook to ${w.url} was deleted already.`;
    }
    this.confirming = '';
    this.webhooks = this.webhooks.filter((x) => x.id !== w.id);
    this.deliveries.delete(w.id);
    this.drawWebhooks();
    byId('webhook-url').focus();
  }

  private setError(message: string): void {
    byId('webhook-error').textContent = message;
  }

  /** Shows an API failure in the panel (a refused key signs out). */
  private fail(e: unknown, what: string, where = 'alerts-error'): void {
    if (!this.hooks.alive()) return;
    if (e instanceof ApiError && e.status === 401) {
      this.hooks.unauthorized(e.message);
      return;
    }
    const line = byId(where);
    if (e instanceof ApiError && e.status === 429) {
      line.textContent = `${what}: rate limited, try again in ${Math.max(1, e.retryAfter)} s.`;
      return;
    }
    line.textContent = `${what}: ${e instanceof Error ? e.message : 'the server could not be reached.'}`;
  }
}

function hideSecret(): void {
  byId('webhook-secret').hidden = true;
  byId('webhook-secret-value').textContent = '';
  byId('webhook-secret-for').textContent = '';
}

/** Empties the panel (sign-out), the secret first. */
export function clearAlerts(): void {
  hideSecret();
  for (const id of [
    'forecast-note', 'forecast-projected', 'forecast-reached', 'forecast-method', 'forecast-plan',
    'alert-list', 'alerts-updated', 'alerts-error', 'webhook-list', 'webhook-status', 'webhook-error',
  ]) {
    byId(id).replaceChildren();
  }
  byId('forecast-facts').hidden = true;
  byId('forecast-plan-row').hidden = true;
  byId<HTMLInputElement>('webhook-url').value = '';
}
