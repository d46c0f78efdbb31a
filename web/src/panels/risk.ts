// The admin's view: "Tenants by risk", from GET /admin/risk (the riskiest first: the
// higher of a limited counter meter's percentage now and its projection at the period's
// end), with a View button per tenant that opens its dashboard read only. Read on
// sign-in, on "Refresh" and on the way back from a tenant's view; it never polls.
import { ApiError } from '../api';
import type { Client, RiskReport, RiskTenant } from '../api';
import { bandWords, byId, clockTime, day, el, meterTitle, num, percent, when } from '../format';

export interface RiskHooks {
  /** "View" was pressed on a tenant's row. */
  view(tenant: RiskTenant): void;
  /** The key was refused: sign out. */
  unauthorized(message: string): void;
}

/** The route, with the rows asked for (it takes 1 to 100). */
export const RISK_PATH = '/admin/risk?limit=50';

/** The section, made once after the sign-in box (web/index.html has no markup for it). */
function section(): HTMLElement {
  const found = document.getElementById('admin');
  if (found) return found;
  const box = el('section', 'admin');
  box.id = 'admin';
  box.hidden = true;
  box.setAttribute('aria-labelledby', 'admin-title');
  const title = el('h2', '', 'Tenants by risk');
  title.id = 'admin-title';
  title.tabIndex = -1;
  const note = el(
    'p',
    'muted',
    'Each tenant at its riskiest limited counter meter: risk is the higher of the percentage used ' +
      'and the percentage projected at the period’s end. Highest first; View opens the tenant’s ' +
      'dashboard, read only.',
  );
  const bar = el('div', 'filter-row');
  const refresh = el('button', 'secondary', 'Refresh');
  refresh.id = 'admin-refresh';
  refresh.type = 'button';
  const updated = el('span', 'muted');
  updated.id = 'admin-updated';
  updated.setAttribute('role', 'status');
  bar.append(refresh, updated);
  const wrap = el('div', 'table-wrap');
  wrap.id = 'risk-table';
  // A region that can take focus: at 375 px the table scrolls sideways, by keyboard too.
  wrap.setAttribute('role', 'region');
  wrap.setAttribute('aria-labelledby', 'admin-title');
  wrap.tabIndex = 0;
  const error = el('p', 'error');
  error.id = 'admin-error';
  error.setAttribute('role', 'alert');
  box.append(title, note, bar, wrap, error);
  byId('sign-in').after(box);
  return box;
}

function head(labels: string[]): HTMLTableSectionElement {
  const thead = el('thead');
  const tr = el('tr');
  for (const label of labels) {
    const th = el('th', '', label);
    th.scope = 'col';
    tr.append(th);
  }
  thead.append(tr);
  return thead;
}

/** Two lines in one cell: the value, then a muted detail. */
function twoLines(main: string | HTMLElement, detail: string): HTMLElement {
  const box = el('span', 'stack');
  box.append(typeof main === 'string' ? el('span', '', main) : main, el('span', 'muted', detail));
  return box;
}

export class RiskPanel {
  constructor(
    private readonly client: Client,
    private readonly hooks: RiskHooks,
  ) {
    section();
    byId('admin-refresh').onclick = () => void this.load();
  }

  show(visible: boolean): void {
    section().hidden = !visible;
  }

  /** Reads GET /admin/risk and draws it; a failure is written under the table. */
  async load(): Promise<void> {
    const button = byId<HTMLButtonElement>('admin-refresh');
    if (button.disabled) return;
    button.disabled = true;
    byId('admin-updated').textContent = 'Reading…';
    try {
      this.draw(await this.client.get<RiskReport>(RISK_PATH));
      byId('admin-error').textContent = '';
    } catch (e) {
      byId('admin-updated').textContent = '';
      if (e instanceof ApiError && e.status === 401) {
        this.hooks.unauthorized(e.message);
        return;
      }
      byId('admin-error').textContent = `The tenants could not be read: ${
        e instanceof Error ? e.message : 'the server could not be reached.'
      }`;
    } finally {
      button.disabled = false;
    }
  }

  /** Focuses the View button of a tenant's row (back from its view), else the title. */
  focus(tenantId = ''): void {
    const row = tenantId
      ? byId('risk-table').querySelector<HTMLButtonElement>(`tr[data-tenant="${CSS.escape(tenantId)}"] button`)
      : null;
    (row ?? byId('admin-title')).focus();
  }

  /** Writes a failure under the table (e.g. a tenant's view that could not open). */
  fail(message: string): void {
    byId('admin-error').textContent = message;
  }

  draw(r: RiskReport): void {
    byId('admin-updated').textContent =
      `Read ${clockTime(new Date())}: the ${num(r.tenants.length)} riskiest of ${num(r.considered)} ` +
      `tenant${r.considered === 1 ? '' : 's'} (computed ${when(r.generated_at)}).`;
    const box = byId('risk-table');
    if (r.tenants.length === 0) {
      box.replaceChildren(el('p', 'muted', 'No tenant has a limited meter.'));
      return;
    }
    const t = el('table', 'risk');
    t.append(el('caption', 'visually-hidden', 'Tenants by risk, highest first'));
    t.append(head(['Tenant', 'View', 'Risk', 'Meter', 'Forecast', 'Alerts', 'Plan', 'Period ends']));
    const body = el('tbody');
    for (const x of r.tenants) body.append(this.row(x));
    t.append(body);
    box.replaceChildren(t);
  }

  private row(x: RiskTenant): HTMLTableRowElement {
    const tr = el('tr');
    tr.dataset.tenant = x.id;
    tr.dataset.band = x.band;
    const id = el('th');
    id.scope = 'row';
    id.append(twoLines(el('strong', '', x.id), x.name));
    const view = el('button', 'secondary', 'View');
    view.type = 'button';
    view.setAttribute('aria-label', `View tenant ${x.id} (${x.name})`);
    view.onclick = () => this.hooks.view(x);
    const chip = el('span', 'badge', bandWords[x.band] ?? x.band);
    chip.dataset.band = x.band;
    const risk = el('span', 'risk-cell');
    risk.append(el('strong', 'risk-pct', percent(x.risk_percent)), chip);
    const f = x.forecast;
    const projected = f ? `${percent(f.projected_percentage)} projected` : '';
    let forecast: HTMLElement;
    if (x.used >= x.limit) forecast = el('span', '', 'Limit reached already');
    else if (f?.limit_reached_at) forecast = twoLines(`Limit reached on ${day(f.limit_reached_at)}`, projected);
    else forecast = f ? twoLines('—', projected) : el('span', '', '—');
    const cells: (string | HTMLElement)[] = [
      view,
      risk,
      twoLines(meterTitle(x.meter), `${num(x.used)} / ${num(x.limit)} (${percent(x.percentage)})`),
      forecast,
      num(x.alerts),
      x.plan,
      day(x.period_end),
    ];
    tr.append(id);
    for (const c of cells) {
      const td = el('td');
      td.append(c);
      tr.append(td);
    }
    return tr;
  }
}

/** Empties the view (sign-out). */
export function clearRisk(): void {
  const box = document.getElementById('admin');
  if (!box) return;
  box.hidden = true;
  for (const id of ['risk-table', 'admin-updated', 'admin-error']) byId(id).replaceChildren();
}
