// The period header, a card per counter meter and a gauge per concurrent meter,
// all from one GET /api/v2/usage/current. Elements are updated in place.
import type { CurrentUsage, MeterUsage } from '../api';
import { bandWords, byId, duration, el, meterTitle, num, when } from '../format';

interface CardRefs {
  root: HTMLElement;
  value: HTMLElement;
  pct: HTMLElement;
  badge: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
  note: HTMLElement;
}

const cards = new Map<string, CardRefs>();

function makeCard(name: string, gauge: boolean): CardRefs {
  const root = el('article', gauge ? 'card gauge' : 'card');
  root.dataset.meter = name;
  const head = el('div', 'card-head');
  const title = el('h3', '', meterTitle(name));
  const badge = el('span', 'badge');
  head.append(title, badge);
  const value = el('p', 'value');
  const pct = el('p', 'pct');
  const bar = el('div', gauge ? 'ring' : 'bar');
  bar.setAttribute('role', 'meter');
  bar.setAttribute('aria-label', `${meterTitle(name)} against its limit`);
  bar.setAttribute('aria-valuemin', '0');
  bar.setAttribute('aria-valuemax', '100');
  const fill = el('div', 'fill');
  bar.append(fill);
  const note = el('p', 'muted note');
  if (gauge) root.append(head, bar, value, pct, note);
  else root.append(head, value, bar, pct, note);
  return { root, value, pct, badge, bar, fill, note };
}

function updateCard(c: CardRefs, m: MeterUsage): void {
  const limited = m.limit !== null;
  c.value.textContent = limited ? `${num(m.used)} / ${num(m.limit!)}` : `${num(m.used)}`;
  c.root.dataset.band = limited ? m.band : 'none';
  c.bar.hidden = !limited;
  c.badge.hidden = !limited;
  if (limited) {
    const pct = Math.min(100, m.percentage);
    c.pct.textContent = `${m.percentage.toFixed(1)} % used`;
    c.badge.textContent = bandWords[m.band];
    c.badge.dataset.band = m.band;
    c.fill.dataset.band = m.band;
    c.bar.style.setProperty('--pct', String(pct));
    c.fill.style.width = `${pct}%`;
    c.bar.setAttribute('aria-valuenow', pct.toFixed(1));
    c.bar.setAttribute('aria-valuetext', `${m.percentage.toFixed(1)} %, ${bandWords[m.band]}`);
    c.note.textContent = `${num(m.remaining ?? 0)} left${m.on_limit === 'reject' ? '' : `, then ${m.on_limit}`}`;
  } else {
    c.pct.textContent = '';
    c.note.textContent = 'No limit on this plan';
  }
}

function renderGroup(container: HTMLElement, entries: [string, MeterUsage][], gauge: boolean) {
  for (const [name, m] of entries) {
    const key = `${gauge ? 'g' : 'c'}:${name}`;
    let c = cards.get(key);
    if (!c) {
      c = makeCard(name, gauge);
      cards.set(key, c);
      container.append(c.root);
    }
    updateCard(c, m);
  }
}

/** Counters first (messages_sent leading), then gauges (sessions, groups, subscribers). */
export function renderMeters(u: CurrentUsage): void {
  const entries = Object.entries(u.meters);
  const counters = entries
    .filter(([, m]) => m.kind === 'counter')
    .sort(([a], [b]) => (a === 'messages_sent' ? -1 : b === 'messages_sent' ? 1 : 0));
  renderGroup(byId('meter-cards'), counters, false);
  renderGroup(
    byId('gauges'),
    entries.filter(([, m]) => m.kind === 'gauge'),
    true,
  );
}

export function renderPeriod(u: CurrentUsage, now: Date): void {
  byId('period-label').textContent = u.period;
  byId('period-range').textContent = `${when(u.period_start)} to ${when(u.period_end)}`;
  const left = new Date(u.period_end).getTime() - now.getTime();
  byId('period-reset').textContent = `Resets in ${duration(left)}`;
}

export function clearMeters(): void {
  cards.clear();
  byId('meter-cards').replaceChildren();
  byId('gauges').replaceChildren();
}
