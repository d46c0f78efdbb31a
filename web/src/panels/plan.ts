// The plan panel: the plan and its price, the period, a pending downgrade (with
// Cancel), the add-ons, the latest lines of the subscription's ledger, and a plan
// picker whose Preview shows the change and what it costs before Confirm applies it.
//
// Requests: the catalog and the subscription once at sign-in; after that the panel
// is drawn from each usage/current read (plan, period, pending_plan, addons), and
// the subscription (for its ledger) is read again only when those change. Preview,
// Confirm and Cancel are a user's actions: one request each, then one usage read.
import { ApiError } from '../api';
import type {
  Addon,
  ChangeKind,
  Client,
  CurrentUsage,
  Plan,
  PlanChangePreview,
  Subscription,
  SubscriptionChange,
} from '../api';
import { byId, day, el, meterTitle, money, num, price, when } from '../format';

export interface PlanHooks {
  /** Reads usage/current now and draws it: the meter cards and this panel. */
  refreshUsage(): Promise<void>;
  /** The key was refused: sign out. */
  unauthorized(message: string): void;
  /** False once the tab has signed out (an answer that lands then draws nothing). */
  alive(): boolean;
}

const KIND_WORDS: Record<ChangeKind, string> = {
  upgrade: 'Upgrade',
  downgrade: 'Downgrade',
  addon_added: 'Add-on bought',
  addon_cancelled: 'Add-on cancelled',
  topup_added: 'Top-up bought',
};
const STATE_WORDS: Record<SubscriptionChange['state'], string> = {
  pending: 'Pending',
  applied: 'Applied',
  cancelled: 'Cancelled',
};
/** How many ledger lines the panel shows, newest first. */
const LEDGER_LINES = 5;

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

/** What a usage read says about the subscription; when it changes, the ledger is read again. */
function signature(u: CurrentUsage): string {
  return [
    u.plan,
    u.period_start,
    u.pending_plan?.id ?? '',
    ...u.addons.map((a) => `${a.id}:${a.ends_at ?? ''}`),
  ].join('|');
}

export class PlanPanel {
  private plans: Plan[] = [];
  private sub: Subscription | null = null;
  private usage: CurrentUsage | null = null;
  private seen = '';
  /** The plan the picker's choices were made for. */
  private choicesFor = '';
  private preview: PlanChangePreview | null = null;

  constructor(
    private readonly client: Client,
    private readonly hooks: PlanHooks,
  ) {
    const choice = byId<HTMLSelectElement>('plan-choice');
    choice.onchange = () => this.clearPreview();
    byId<HTMLFormElement>('plan-form').onsubmit = (ev) => {
      ev.preventDefault();
      void this.runPreview();
    };
    byId('plan-confirm').onclick = () => void this.confirm();
    byId('plan-pending-cancel').onclick = () => void this.cancelPending();
  }

  /** The catalog and the subscription, read once at sign-in. */
  async load(): Promise<void> {
    try {
      const [catalog, sub] = await Promise.all([
        this.client.get<{ plans: Plan[] }>('/api/v2/plans'),
        this.client.get<Subscription>('/api/v2/subscription'),
      ]);
      if (!this.hooks.alive()) return;
      this.plans = catalog.plans;
      this.sub = sub;
      this.choicesFor = '';
      this.draw();
    } catch (e) {
      this.fail(e, 'The plan could not be read');
    }
  }

  /** Each usage read: redraws when the plan, the period, the pending change or the add-ons changed. */
  update(u: CurrentUsage): void {
    this.usage = u;
    const now = signature(u);
    if (now === this.seen) return;
    const first = this.seen === '';
    this.seen = now;
    if (!first) {
      // Changed here or elsewhere (another tab, an administrator): a shown preview is stale.
      if (this.preview) {
        this.clearPreview();
        byId('plan-quote').textContent = 'The subscription changed: preview again.';
      }
      // The catalog too if the sign-in's read of it failed.
      void (this.plans.length === 0 ? this.load() : this.reloadSubscription());
    }
    this.draw();
  }

  /** A plan's display name from the catalog ("Pro" for "pro"); the name itself until it is read. */
  displayName(name: string): string {
    return this.plans.find((p) => p.name === name)?.display_name ?? name;
  }

  private async reloadSubscription(): Promise<void> {
    try {
      const sub = await this.client.get<Subscription>('/api/v2/subscription');
      if (!this.hooks.alive()) return;
      this.sub = sub;
      this.draw();
    } catch (e) {
      this.fail(e, 'The subscription could not be read');
    }
  }

  private draw(): void {
    const u = this.usage;
    if (!u) return;
    const plan = this.plans.find((p) => p.name === u.plan);
    const cents = this.sub && this.sub.plan === u.plan ? this.sub.price_cents : plan?.price_cents;
    byId('plan-name').textContent = this.displayName(u.plan);
    byId('plan-price').textContent = cents === undefined ? '' : price(cents);
    byId('plan-period').textContent = `${when(u.period_start)} to ${when(u.period_end)}`;

    const pending = u.pending_plan;
    byId('plan-pending').hidden = pending === null;
    if (pending) {
      byId('plan-pending-text').textContent =
        `Changes to ${this.displayName(pending.plan)} on ${when(pending.effective_at)}` +
        ` (requested ${when(pending.requested_at)}).`;
    }
    this.drawAddons(u.addons);
    this.drawLedger();
    this.fillChoices(u.plan, plan);
  }

  private drawAddons(addons: Addon[]): void {
    const box = byId('plan-addons');
    if (addons.length === 0) {
      box.replaceChildren(el('p', 'muted', 'No add-ons.'));
      return;
    }
    const rows = addons.map((a) => [
      meterTitle(a.meter),
      num(a.units),
      money(a.price_cents),
      a.ends_at ? when(a.ends_at) : 'Renews each period',
    ]);
    box.replaceChildren(table('Add-ons', ['Meter', 'Units', 'Price per period', 'Ends'], rows));
  }

  private drawLedger(): void {
    const box = byId('plan-changes');
    const changes = this.sub?.changes ?? [];
    if (changes.length === 0) {
      box.replaceChildren(el('p', 'muted', this.sub ? 'No changes yet.' : ''));
      return;
    }
    // Three columns, the state under the change, so that the table fits 375 px.
    const rows = changes.slice(0, LEDGER_LINES).map((c) => {
      const what = el('span', 'change');
      what.append(
        el('span', '', c.kind === 'upgrade' || c.kind === 'downgrade'
          ? `${KIND_WORDS[c.kind]}, ${this.displayName(c.from)} to ${this.displayName(c.to)}`
          : (KIND_WORDS[c.kind] ?? c.kind)),
        el('span', `status-chip c-${c.state}`, STATE_WORDS[c.state] ?? c.state),
      );
      return [what, day(c.effective_at), money(c.proration_cents)];
    });
    box.replaceChildren(table('Recent subscription changes', ['Change', 'Effective', 'Charged'], rows));
  }

  /** The plans a tenant may pick: not the one it has, not one priced by contract. */
  private fillChoices(current: string, plan: Plan | undefined): void {
    const key = `${current}|${this.plans.length}`;
    if (key === this.choicesFor) return;
    this.choicesFor = key;
    const select = byId<HTMLSelectElement>('plan-choice');
    const chosen = select.value;
    const choices = this.plans
      .filter((p) => p.price_cents >= 0 && p.name !== current)
      .sort((a, b) => a.price_cents - b.price_cents);
    select.replaceChildren(
      ...choices.map(
        (p) => new Option(`${p.display_name}, ${money(p.price_cents)} per period`, p.name, false, p.name === chosen),
      ),
    );
    const contract = plan !== undefined && plan.price_cents < 0;
    const none = this.plans.length > 0 && choices.length === 0;
    const closed = contract || none;
    select.disabled = closed || this.plans.length === 0;
    byId<HTMLButtonElement>('plan-preview').disabled = select.disabled;
    byId('plan-note').textContent = contract
      ? 'This plan is priced by contract: an administrator changes it.'
      : none
        ? 'There is no other plan to choose.'
        : 'Upgrades apply at once, charged for the rest of the period; downgrades at the period’s end.';
    this.clearPreview();
  }

  private clearPreview(): void {
    this.preview = null;
    byId('plan-quote').replaceChildren();
    byId('plan-confirm').hidden = true;
  }

  private async runPreview(): Promise<void> {
    const select = byId<HTMLSelectElement>('plan-choice');
    const button = byId<HTMLButtonElement>('plan-preview');
    const to = select.value;
    if (!to || button.disabled) return;
    this.clearPreview();
    this.setError('');
    byId('plan-status').textContent = '';
    button.disabled = true;
    try {
      const p = await this.client.send<PlanChangePreview>('POST', '/api/v2/subscription/preview', { plan: to });
      if (!this.hooks.alive() || select.value !== to) return;
      this.preview = p;
      this.drawQuote(p);
    } catch (e) {
      this.fail(e, 'The preview failed');
    } finally {
      button.disabled = select.disabled;
    }
  }

  private drawQuote(p: PlanChangePreview): void {
    const quote = byId('plan-quote');
    const from = this.displayName(p.from);
    const to = this.displayName(p.to);
    if (p.kind === 'same') {
      quote.replaceChildren(el('p', '', `${to} is your plan already.`));
      return;
    }
    const head = el('p', 'quote-kind');
    head.append(el('strong', '', p.kind === 'upgrade' ? 'Upgrade' : 'Downgrade'), ` from ${from} to ${to}`);
    const amount = el('p', 'quote-amount');
    amount.id = 'plan-quote-amount';
    amount.dataset.cents = String(p.proration_cents);
    const pending = this.usage?.pending_plan;
    const replaces = pending ? ` It replaces the pending change to ${this.displayName(pending.plan)}.` : '';
    let detail: string;
    if (p.kind === 'upgrade') {
      amount.textContent = `${money(p.proration_cents)} now`;
      detail =
        `Prorated for the rest of this period; the new limits apply at once, then ` +
        `${money(p.new_price_cents)} per period.${replaces}`;
    } else {
      amount.textContent = `Takes effect on ${when(p.effective_at)}`;
      detail =
        `Nothing is charged now; ${from}’s limits stay until then, then ` +
        `${money(p.new_price_cents)} per period.${replaces}`;
    }
    quote.replaceChildren(head, amount, el('p', 'muted', detail), this.limitChanges(p));
    const confirm = byId('plan-confirm');
    confirm.textContent = `Confirm ${p.kind === 'upgrade' ? 'upgrade' : 'downgrade'} to ${to}`;
    confirm.hidden = false;
  }

  /** The plan limits that change, current plan against the new one (add-ons come on top of both). */
  private limitChanges(p: PlanChangePreview): HTMLElement {
    const old = this.plans.find((x) => x.name === p.from)?.limits ?? {};
    const words = (v: number | null | undefined): string => (v === null || v === undefined ? 'no limit' : num(v));
    const list = el('ul', 'quote-limits');
    for (const [meter, next] of Object.entries(p.new_limits)) {
      const before = old[meter] ?? null;
      if (before === next) continue;
      list.append(el('li', '', `${meterTitle(meter)}: ${words(next)} (now ${words(before)})`));
    }
    if (list.childElementCount === 0) return el('p', 'muted', 'The plan limits stay the same.');
    const box = el('div');
    const note = this.usage && this.usage.addons.length > 0 ? ' (add-ons come on top)' : '';
    box.append(el('p', '', `Plan limits${note}:`), list);
    return box;
  }

  private async confirm(): Promise<void> {
    const p = this.preview;
    const button = byId<HTMLButtonElement>('plan-confirm');
    if (!p || button.disabled) return;
    this.setError('');
    button.disabled = true;
    try {
      const line = await this.client.send<SubscriptionChange>('POST', '/api/v2/subscription/change', {
        plan: p.to,
      });
      if (!this.hooks.alive()) return;
      this.clearPreview();
      const to = this.displayName(line.to);
      byId('plan-status').textContent =
        line.state === 'applied'
          ? `Changed to ${to}: ${money(line.proration_cents)} charged now; the new limits apply.`
          : `The downgrade to ${to} is scheduled for ${when(line.effective_at)}.`;
      byId('plan-choice').focus();
      await this.afterChange();
    } catch (e) {
      this.fail(e, 'The change failed');
    } finally {
      button.disabled = false;
    }
  }

  private async cancelPending(): Promise<void> {
    const button = byId<HTMLButtonElement>('plan-pending-cancel');
    if (button.disabled) return;
    this.setError('');
    button.disabled = true;
    try {
      const line = await this.client.send<SubscriptionChange>('DELETE', '/api/v2/subscription/pending');
      if (!this.hooks.alive()) return;
      // A shown preview spoke of the pending change; it is dropped without the "changed" note.
      this.clearPreview();
      byId('plan-status').textContent =
        `The downgrade to ${this.displayName(line.to)} is cancelled: the plan stays ${this.displayName(line.from)}.`;
      byId('plan-choice').focus();
      await this.afterChange();
    } catch (e) {
      this.fail(e, 'The cancellation failed');
    } finally {
      button.disabled = false;
    }
  }

  /** The cards' limits and this panel, at once (the ledger follows from update()). */
  private async afterChange(): Promise<void> {
    try {
      await this.hooks.refreshUsage();
    } catch (e) {
      this.fail(e, 'The usage could not be read again');
    }
  }

  private setError(message: string): void {
    byId('plan-error').textContent = message;
  }

  /** Shows an API failure in the panel (a refused key signs out). */
  private fail(e: unknown, what: string): void {
    if (!this.hooks.alive()) return;
    if (e instanceof ApiError && e.status === 401) {
      this.hooks.unauthorized(e.message);
      return;
    }
    if (e instanceof ApiError && e.status === 429) {
      this.setError(`${what}: rate limited, try again in ${Math.max(1, e.retryAfter)} s.`);
      return;
    }
    this.setError(`${what}: ${e instanceof Error ? e.message : 'the server could not be reached.'}`);
  }
}

/** Empties the panel (sign-out). */
export function clearPlan(): void {
  for (const id of ['plan-name', 'plan-price', 'plan-period', 'plan-pending-text', 'plan-quote', 'plan-status', 'plan-error', 'plan-note']) {
    byId(id).replaceChildren();
  }
  byId('plan-pending').hidden = true;
  byId('plan-confirm').hidden = true;
  byId('plan-addons').replaceChildren();
  byId('plan-changes').replaceChildren();
  byId<HTMLSelectElement>('plan-choice').replaceChildren();
}
