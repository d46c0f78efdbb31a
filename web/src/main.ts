// The Quotum dashboard: sign in with a tenant key (its dashboard, dashboard.ts) or the
// admin key (the tenants by risk, panels/risk.ts, each viewable read only), sign out.
import './style.css';
import { ApiError, Client } from './api';
import type { CurrentUsage, RiskReport, RiskTenant } from './api';
import { openDashboard } from './dashboard';
import type { Dashboard } from './dashboard';
import { byId } from './format';
import { watchChartWidths } from './panels/charts';
import { clearRisk, RISK_PATH, RiskPanel } from './panels/risk';
import { showViewing } from './panels/viewing';

/** sessionStorage only: gone when the tab closes, never in a URL or a log. */
const KEY_SLOT = 'quotum.api_key';

let dashboard: Dashboard | null = null;
let risk: RiskPanel | null = null;
/** Bumped by signOut: a read that was in flight then opens nothing when it lands. */
let generation = 0;

type Screen = 'sign-in' | 'dashboard' | 'admin';

function show(screen: Screen): void {
  byId('sign-in').hidden = screen !== 'sign-in';
  byId('dashboard').hidden = screen !== 'dashboard';
  risk?.show(screen === 'admin');
  byId('sign-out').hidden = screen === 'sign-in';
  byId('who').hidden = screen === 'sign-in';
}

function closeDashboard(): void {
  dashboard?.stop();
  dashboard = null;
  showViewing(null);
}

function signOut(message = ''): void {
  generation += 1;
  closeDashboard();
  risk = null;
  clearRisk();
  sessionStorage.removeItem(KEY_SLOT);
  show('sign-in');
  byId('sign-in-error').textContent = message;
  byId<HTMLInputElement>('api-key').value = '';
  byId('api-key').focus();
}

const refused = (message: string): void => signOut(`Signed out: ${message}`);

/** A tenant's dashboard: its own key, or the admin key viewing it read only. */
function openTenant(client: Client, first: CurrentUsage): void {
  dashboard = openDashboard(client, first, { unauthorized: (message) => signOut(message) });
  show('dashboard');
}

/** The admin's "View": the tenant's dashboard with the admin key and X-Quotum-Tenant. */
async function viewTenant(key: string, t: RiskTenant): Promise<void> {
  const mine = generation;
  const client = new Client(key, t.id);
  try {
    const first = await client.get<CurrentUsage>('/api/v2/usage/current');
    if (mine !== generation || dashboard) return;
    openTenant(client, first);
    showViewing(t.id, () => backToTenants(t.id));
  } catch (e) {
    if (mine !== generation) return;
    if (e instanceof ApiError && e.status === 401) refused(e.message);
    else risk?.fail(`Tenant ${t.id} could not be opened: ${e instanceof Error ? e.message : 'no answer'}`);
  }
}

function backToTenants(tenantId: string): void {
  closeDashboard();
  byId('who').textContent = 'Administrator';
  show('admin');
  risk?.focus(tenantId);
}

function openAdmin(key: string, client: Client, report: RiskReport): void {
  risk = new RiskPanel(client, {
    view: (t) => void viewTenant(key, t),
    unauthorized: refused,
  });
  risk.draw(report);
  byId('who').textContent = 'Administrator';
  show('admin');
  risk.focus();
}

function refuse(e: unknown): void {
  sessionStorage.removeItem(KEY_SLOT);
  show('sign-in');
  byId('sign-in-error').textContent =
    e instanceof ApiError && e.status === 401
      ? 'That key was not accepted. Check it and try again.'
      : `Could not sign in: ${e instanceof Error ? e.message : 'the server could not be reached'}.`;
}

/**
 * A tenant key answers usage/current; any other key is refused there (a 4xx) and is
 * then tried on GET /admin/risk: 200 is the admin key, 401 a key nobody knows. The
 * tenant's read comes first so that signing in with a tenant key costs no failed
 * request (the browser logs each one in the console).
 */
async function signIn(key: string): Promise<void> {
  const mine = generation;
  const client = new Client(key);
  try {
    const first = await client.get<CurrentUsage>('/api/v2/usage/current');
    if (mine !== generation) return;
    sessionStorage.setItem(KEY_SLOT, key);
    byId('sign-in-error').textContent = '';
    openTenant(client, first);
    return;
  } catch (e) {
    if (mine !== generation) return;
    const tenantRefused = e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 429;
    if (!tenantRefused) {
      refuse(e);
      return;
    }
    try {
      const report = await client.get<RiskReport>(RISK_PATH);
      if (mine !== generation) return;
      sessionStorage.setItem(KEY_SLOT, key);
      byId('sign-in-error').textContent = '';
      openAdmin(key, client, report);
    } catch (again) {
      if (mine !== generation) return;
      // Refused there too (401; 403: a tenant key after all; 404: a server without the
      // route): usage/current's refusal is the one to show.
      const alsoRefused = again instanceof ApiError && again.status >= 400 && again.status < 500 && again.status !== 429;
      refuse(alsoRefused ? e : again);
    }
  }
}

function main(): void {
  // The sign-in takes either key (web/index.html words it for a tenant key).
  document.querySelector('label[for="api-key"]')!.textContent = 'API key (tenant or admin)';
  byId('sign-in').querySelector('p')!.textContent =
    'Sign in with a tenant API key, or the admin key to see the tenants by risk. The key stays ' +
    'in this browser tab (session storage) and is sent only in the Authorization header.';
  byId('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = byId<HTMLInputElement>('api-key');
    const key = input.value.trim();
    if (!key) {
      byId('sign-in-error').textContent = 'Enter an API key.';
      return;
    }
    input.value = '';
    void signIn(key);
  });
  byId('sign-out').addEventListener('click', () => signOut());
  watchChartWidths();
  const kept = sessionStorage.getItem(KEY_SLOT);
  if (kept) void signIn(kept);
  else show('sign-in');
}

main();
