// The Quotum dashboard: sign in with a tenant key, then poll within the key's
// rate-limit budget (budget.ts) and draw the panels the API has routes for.
import './style.css';
import { ApiError, Client } from './api';
import type { Channels, CurrentUsage, DailyRow, HistoryPeriod, HourRow, QuotumEvent, Session } from './api';
import { MANUAL_REFRESH_GAP_MS, perMinute } from './budget';
import { byId, clockTime } from './format';
import { AlertsPanel, clearAlerts } from './panels/alerts';
import { clearCharts, renderDaily, renderHistory, renderHourly, watchChartWidths } from './panels/charts';
import { watchExports } from './panels/exports';
import { rangeLabel, rangeQuery, watchFilter } from './panels/filter';
import { fillChannelMeters, renderChannels, renderEvents, renderSessions } from './panels/lists';
import { clearMeters, renderMeters, renderPeriod } from './panels/meters';
import { clearPlan, PlanPanel } from './panels/plan';
import { Poller } from './poller';

/** sessionStorage only: gone when the tab closes, never in a URL or a log. */
const KEY_SLOT = 'quotum.api_key';

let poller: Poller | null = null;
/** Bumped by signOut: a read that was in flight then draws nothing when it lands. */
let generation = 0;

function show(signedIn: boolean): void {
  byId('sign-in').hidden = signedIn;
  byId('dashboard').hidden = !signedIn;
  byId('sign-out').hidden = !signedIn;
  byId('who').hidden = !signedIn;
}

function signOut(message = ''): void {
  generation += 1;
  poller?.stop();
  poller = null;
  sessionStorage.removeItem(KEY_SLOT);
  clearMeters();
  clearCharts();
  clearPlan();
  clearAlerts();
  show(false);
  byId('sign-in-error').textContent = message;
  byId<HTMLInputElement>('api-key').value = '';
  byId('api-key').focus();
}

function counterMeters(u: CurrentUsage): string[] {
  return Object.entries(u.meters)
    .filter(([, m]) => m.kind === 'counter')
    .map(([name]) => name);
}

function start(client: Client, first: CurrentUsage): void {
  const select = byId<HTMLSelectElement>('channel-meter');
  const mine = generation;
  /** Reads a route and hands its answer on, unless the tab signed out meanwhile. */
  const read = async <T>(path: string, use: (value: T) => void): Promise<void> => {
    const value = await client.get<T>(path);
    if (mine === generation) use(value);
  };
  const plan = new PlanPanel(client, {
    refreshUsage: () => read<CurrentUsage>('/api/v2/usage/current', drawUsage),
    unauthorized: (message) => signOut(`Signed out: ${message}`),
    alive: () => mine === generation,
  });
  const alerts = new AlertsPanel(client, {
    unauthorized: (message) => signOut(`Signed out: ${message}`),
    alive: () => mine === generation,
    planName: (name) => plan.displayName(name),
  });
  const drawUsage = (u: CurrentUsage): void => {
    const now = new Date();
    byId('who').textContent = `${u.tenant_id} · ${u.plan} plan`;
    renderPeriod(u, now);
    renderMeters(u);
    plan.update(u);
    alerts.update(u);
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
  const hooks = {
    usage: () => read<CurrentUsage>('/api/v2/usage/current', drawUsage),
    panels: async () => {
      await read<HourRow[]>('/api/v2/usage/hourly', renderHourly);
      await read<{ periods: HistoryPeriod[] }>('/api/v2/usage/history?months=12', (h) => renderHistory(h.periods));
      await readRange();
      await read<{ sessions: Session[] }>('/api/v2/sessions', (s) => renderSessions(s.sessions));
      await read<{ events: QuotumEvent[] }>('/api/v2/events', (e) => renderEvents(e.events));
      await alerts.readAlerts();
      if (mine !== generation) return;
      byId('panels-updated').textContent = `Charts and lists updated ${clockTime(new Date())}; every minute.`;
    },
    problem: (message: string | null) => {
      byId('status').textContent = message ?? '';
    },
    unauthorized: (message: string) => signOut(`Signed out: ${message}`),
    interval: (ms: number) => {
      const rule = client.general;
      byId('status').dataset.interval = String(ms);
      byId('updated').title = rule
        ? `Usage is read every ${ms / 1000} s, within half of this key's ${perMinute(rule.limit, rule.windowSeconds)} requests per minute.`
        : '';
    },
  };
  drawUsage(first);
  show(true);
  void plan.load();
  void alerts.load();
  poller = new Poller(client, hooks);
  poller.start(true);
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
    poller?.refreshPanels();
    refresh.disabled = true;
    window.setTimeout(() => (refresh.disabled = false), MANUAL_REFRESH_GAP_MS);
  };
}

/** Checks the key with one read of usage/current, then starts polling. */
async function signIn(key: string): Promise<void> {
  const client = new Client(key);
  try {
    const first = await client.get<CurrentUsage>('/api/v2/usage/current');
    sessionStorage.setItem(KEY_SLOT, key);
    byId('sign-in-error').textContent = '';
    start(client, first);
  } catch (e) {
    sessionStorage.removeItem(KEY_SLOT);
    show(false);
    byId('sign-in-error').textContent =
      e instanceof ApiError && e.status === 401
        ? 'That key was not accepted. Check it and try again.'
        : `Could not sign in: ${e instanceof Error ? e.message : 'the server could not be reached'}.`;
  }
}

function main(): void {
  byId('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = byId<HTMLInputElement>('api-key');
    const key = input.value.trim();
    if (!key) {
      byId('sign-in-error').textContent = 'Enter a tenant API key.';
      return;
    }
    input.value = '';
    void signIn(key);
  });
  byId('sign-out').addEventListener('click', () => signOut());
  watchChartWidths();
  const kept = sessionStorage.getItem(KEY_SLOT);
  if (kept) void signIn(kept);
  else show(false);
}

main();
