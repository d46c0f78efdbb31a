// Tables and lists: units per channel, sessions (status, lease, warm-up, messaging tier),
// recent events.
import type { Channels, MessagingTier, QuotumEvent, Session } from '../api';
import { byId, el, meterTitle, num, when } from '../format';

function table(caption: string, head: string[], rows: (string | HTMLElement)[][]): HTMLTableElement {
  const t = el('table');
  t.append(el('caption', 'visually-hidden', caption));
  const thead = el('thead');
  const tr = el('tr');
  for (const h of head) {
    const th = el('th', '', h);
    th.scope = 'col';
    tr.append(th);
  }
  thead.append(tr);
  const tbody = el('tbody');
  for (const r of rows) {
    const row = el('tr');
    r.forEach((cell, i) => {
      const td = el(i === 0 ? 'th' : 'td');
      if (i === 0) (td as HTMLTableCellElement).scope = 'row';
      if (typeof cell === 'string') td.textContent = cell;
      else td.append(cell);
      row.append(td);
    });
    tbody.append(row);
  }
  t.append(thead, tbody);
  return t;
}

const CHANNEL_NAMES: Record<string, string> = {
  whatsapp: 'WhatsApp',
  telegram: 'Telegram',
  messenger: 'Messenger',
  webchat: 'Web chat',
};

export function renderChannels(c: Channels): void {
  const max = Math.max(1, ...Object.values(c.channels));
  const rows = Object.entries(c.channels).map(([name, v]) => {
    const bar = el('span', 'hbar');
    bar.style.width = `${(v / max) * 100}%`;
    bar.setAttribute('aria-hidden', 'true');
    const share = c.total > 0 ? ` (${((v / c.total) * 100).toFixed(0)} %)` : '';
    const cell = el('span', 'hbar-cell');
    cell.append(el('span', '', `${num(v)}${share}`), bar);
    return [CHANNEL_NAMES[name] ?? meterTitle(name), cell];
  });
  rows.push(['Total', num(c.total)]);
  byId('channels').replaceChildren(
    table(`${meterTitle(c.meter)} by channel this period`, ['Channel', meterTitle(c.meter)], rows),
  );
}

/** The channel breakdown's meter choices: every counter meter. */
export function fillChannelMeters(select: HTMLSelectElement, meters: string[]): void {
  if (select.options.length === meters.length) return;
  const chosen = select.value || 'messages_sent';
  select.replaceChildren(...meters.map((m) => new Option(meterTitle(m), m, false, m === chosen)));
}

/** A cap of unique recipients in words: "1,000", or "unlimited" for null. */
const cap = (limit: number | null): string => (limit === null ? 'unlimited' : num(limit));

/**
 * A session's messaging tier: "Tier 1: 12 / 250 unique recipients (24 h)" over a bar
 * (role meter) of the 24 hours' unique recipients against the cap, then the next step:
 * the unique recipients still needed over 7 days, or when the qualified step takes effect.
 */
function tierCell(sessionId: string, t: MessagingTier): HTMLElement {
  const cell = el('div', 'tier');
  const name = `Tier ${num(t.level + 1)}`;
  if (t.limit === null) {
    cell.append(el('span', 'tier-value', `${name}: ${num(t.used_24h)} unique recipients (24 h), unlimited`));
  } else {
    const full = t.used_24h >= t.limit;
    cell.append(
      el(
        'span',
        'tier-value',
        `${name}: ${num(t.used_24h)} / ${num(t.limit)} unique recipients (24 h)${full ? ', cap reached' : ''}`,
      ),
    );
    const pct = Math.min(100, (t.used_24h / t.limit) * 100);
    const bar = el('div', 'bar tier-bar');
    bar.setAttribute('role', 'meter');
    bar.setAttribute('aria-label', `Session ${sessionId}: unique recipients in 24 hours against its tier's cap`);
    bar.setAttribute('aria-valuemin', '0');
    bar.setAttribute('aria-valuemax', '100');
    bar.setAttribute('aria-valuenow', pct.toFixed(1));
    bar.setAttribute(
      'aria-valuetext',
      `${num(t.used_24h)} of ${num(t.limit)}, ${pct.toFixed(1)} %${full ? ', cap reached' : ''}`,
    );
    if (full) bar.dataset.full = 'true';
    const fill = el('div', 'fill');
    fill.style.width = `${pct}%`;
    bar.append(fill);
    cell.append(bar);
  }
  const next = t.next;
  if (next) {
    const line = el('span', 'muted tier-next', `next: ${cap(next.limit)}`);
    if (next.at) {
      const at = el('time', '', when(next.at));
      at.dateTime = next.at;
      line.append(' at ', at);
    } else if (next.needed > 0) {
      line.append(` — ${num(next.needed)} more unique recipient${next.needed === 1 ? '' : 's'} in 7 days`);
    } else {
      line.append(', qualified');
    }
    cell.append(line);
  }
  return cell;
}

export function renderSessions(sessions: Session[]): void {
  const box = byId('sessions');
  if (sessions.length === 0) {
    box.replaceChildren(el('p', 'muted', 'No sessions yet.'));
    return;
  }
  // The tier column only on a plan with messaging tiers (messaging_tier is null otherwise).
  const tiers = sessions.some((s) => s.messaging_tier);
  const rows = sessions.map((s) => {
    const status = el('span', `status-chip s-${s.status}`, s.status.replace('_', ' '));
    const row: (string | HTMLElement)[] = [
      s.id,
      s.phone || '—',
      status,
      s.warmup ? `${num(s.warmup.sent_today)} / ${num(s.warmup.cap_today)} today` : 'none',
    ];
    if (tiers) row.push(s.messaging_tier ? tierCell(s.id, s.messaging_tier) : '');
    row.push(s.lease_expires_at ? when(s.lease_expires_at) : '—', when(s.last_heartbeat));
    return row;
  });
  const head = ['Session', 'Phone', 'Status', 'Warm-up'];
  if (tiers) head.push('Messaging tier');
  head.push('Lease expires', 'Last heartbeat');
  box.replaceChildren(table('Sessions', head, rows));
}

export function renderEvents(events: QuotumEvent[]): void {
  const box = byId('events');
  if (events.length === 0) {
    box.replaceChildren(el('p', 'muted', 'No events yet.'));
    return;
  }
  const list = el('ol', 'events');
  for (const e of events.slice(0, 20)) {
    const li = el('li');
    const time = el('time', 'muted', when(e.at));
    time.dateTime = e.at;
    li.append(time, el('strong', '', ` ${e.type} `), el('span', '', `${e.subject}${e.detail ? `: ${e.detail}` : ''}`));
    list.append(li);
  }
  box.replaceChildren(list);
}
