// A tenant's dashboard: polls within the key's rate-limit budget (budget.ts), takes
// the usage stream's pushes as they come (stream.ts), and draws the panels the API has
// routes for. Opened with a tenant key, or read only by an admin viewing a tenant.
import type { Channels, Client, CurrentUsage, DailyRow, HistoryPeriod, HourRow, QuotumEvent, Session } from './api';
import { MANUAL_REFRESH_GAP_MS, perMinute } from './budget';
import { byId, clockTime } from './format';
import { AlertsPanel, clearAlerts } from './panels/alerts';
import { clearCharts, renderDaily, renderHistory, renderHourly } from './panels/charts';
import { watchExports } from './panels/exports';
import { rangeLabel, rangeQuery, watchFilter } from './panels/filter';
import { fillChannelMeters, renderChannels, renderEvents, renderSessions } from './panels/lists';
import { showLive } from './panels/live';
import { clearMeters, renderMeters, renderPeriod } from './panels/meters';
import { clearPlan, PlanPanel } from './panels/plan';
import { Poller } from './poller';
import { UsageStream } from './stream';
import { UsageState } from './usage-state';

export interface DashboardHooks {
  /** The key was refused: sign out with this message. */
  unauthorized(message: string): void;
}

export interface Dashboard {
  /** Stops every loop and the stream, and empties the panels; a read still in flight draws nothing. */
  stop(): void;
}

function counterMeters(u: CurrentUsage): string[] {
  return Object.entries(u.meters)
    .filter(([, m]) => m.kind === 'counter')
    .map(([name]) => name);
}

/** Opens the dashboard on `first`, the sign-in's read of usage/current. */
export function openDashboard(client: Client, first: CurrentUsage, hooks: DashboardHooks): Dashboard {
  const select = byId<HTMLSelectElement>('channel-meter');
  let open = true;
  const alive = (): boolean => open;
  const unauthorized = (message: string): void => {
    if (open) hooks.unauthorized(`Signed out: ${message}`);
  };
  /** Reads a route and hands its answer on, unless the dashboard was closed meanwhile. */
  const read = async <T>(path: string, use: (value: T) => void): Promise<void> => {
    const value = await client.get<T>(path);
    if (open) use(value);
  };
  const state = new UsageState();
  /** A read of usage/current is in flight (a push then asks for none more). */
  let reading = false;
  const readUsage = async (): Promise<void> => {
    const sent = state.now();
    reading = true;
    try {
      await read<CurrentUsage>('/api/v2/usage/current', (u) => drawUsage(state.fromPoll(u, sent)));
    } finally {
      reading = false;
    }
  };
  const plan = new PlanPanel(client, { refreshUsage: readUsage, unauthorized, alive });
  const alerts = new AlertsPanel(client, {
    unauthorized,
    alive,
    planName: (name) => plan.displayName(name),
  });
  /** `polled`: from a read of usage/current (false: a stream push merged into the last one). */
  const drawUsage = (u: CurrentUsage, polled = true): void => {
    const now = new Date();
    byId('who').textContent = `${u.tenant_id} · ${u.plan} plan`;
    renderPeriod(u, now);
    renderMeters(u);
    plan.update(u);
    alerts.update(u, polled);
    fillChannelMeters(select, counterMeters(u));
    byId('updated').textContent =
      `Updated ${clockTime(now)}` +
      (u.source === 'aggregate' ? ' (from the stored aggregates: the live store is away)' : '');
  };
  // The filter's range; the last valid one while a custom range is being edited.
  let range = rangeQuery() ?? 'range=30d';
  const readChannels = async (): Promise<void> => {
    const meter = encodeURIComponent(select.value || 'messages_sent');
    await read<Channels>(`/api/v2/usage/channels?meter=${meter}&${range}`, renderChannels);
  };
  const readRange = async (): Promise<void> => {
    const words = rangeLabel();
    await read<DailyRow[]>(`/api/v2/usage/daily?${range}`, (rows) => renderDaily(rows, words));
    await readChannels();
    byId('daily-title').textContent = `Per day, ${words}`;
    byId('channels-title').textContent = `By channel, ${words}`;
  };
  const poller = new Poller(client, {
    usage: readUsage,
    panels: async () => {
      await read<HourRow[]>('/api/v2/usage/hourly', renderHourly);
      await read<{ periods: HistoryPeriod[] }>('/api/v2/usage/history?months=12', (h) => renderHistory(h.periods));
      await readRange();
      await read<{ sessions: Session[] }>('/api/v2/sessions', (s) => renderSessions(s.sessions));
      await read<{ events: QuotumEvent[] }>('/api/v2/events', (e) => renderEvents(e.events));
      await alerts.readAlerts();
      if (!open) return;
      byId('panels-updated').textContent = `Charts and lists updated ${clockTime(new Date())}; every minute.`;
    },
    problem: (message: string | null) => {
      if (open) byId('status').textContent = message ?? '';
    },
    unauthorized,
    interval: (ms: number) => {
      const rule = client.general;
      byId('status').dataset.interval = String(ms);
      byId('updated').title = rule
        ? `Usage is read every ${ms / 1000} s, within half of this key's ${perMinute(rule.limit, rule.windowSeconds)} requests per minute.`
        : '';
    },
  });
  const stream = new UsageStream(client, {
    usage: (e) => {
      const pushed = open ? state.fromStream(e) : null;
      if (!pushed) return;
      drawUsage(pushed.usage, false);
      // A new plan, period or limit: the rest of usage/current (forecast, add-ons) follows at once.
      if (pushed.reshaped && !reading) void readUsage().catch(() => undefined);
    },
    state: (s, why) => {
      if (open) showLive(s, why);
    },
    unauthorized,
  });

  byId('dashboard').classList.toggle('read-only', client.readOnly);
  drawUsage(state.fromPoll(first, state.now()));
  showLive('polling');
  void plan.load();
  void alerts.load();
  poller.start(true);
  stream.start();
  select.onchange = () => void readChannels().catch(() => undefined);
  // A filter change reads its two routes once (a user action, like the meter choice).
  watchFilter(() => {
    const q = rangeQuery();
    if (q === null) return;
    range = q;
    void readRange().catch((e: unknown) => {
      byId('range-note').textContent = e instanceof Error ? e.message : 'The range could not be read.';
    });
  });
  watchExports(client, rangeQuery);
  const refresh = byId<HTMLButtonElement>('refresh');
  refresh.onclick = () => {
    poller.refreshPanels();
    refresh.disabled = true;
    window.setTimeout(() => (refresh.disabled = false), MANUAL_REFRESH_GAP_MS);
  };

  return {
    stop() {
      if (!open) return;
      open = false;
      poller.stop();
      stream.stop();
      showLive(null);
      clearMeters();
      clearCharts();
      clearPlan();
      clearAlerts();
      // Another tenant's view may follow: nothing of this one stays on the page.
      for (const id of ['status', 'updated', 'panels-updated', 'channels', 'sessions', 'events']) {
        byId(id).replaceChildren();
      }
      byId('dashboard').classList.remove('read-only');
    },
  };
}
