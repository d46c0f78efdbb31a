// Tables and lists: units per channel, sessions (status, lease, warm-up), recent events.
import type { Channels, QuotumEvent, Session } from '../api';
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

export function renderSessions(sessions: Session[]): void {
  const box = byId('sessions');
  if (sessions.length === 0) {
    box.replaceChildren(el('p', 'muted', 'No sessions yet.'));
    return;
  }
  const rows = sessions.map((s) => {
    const status = el('span', `status-chip s-${s.status}`, s.status.replace('_', ' '));
    return [
      s.id,
      s.phone || '—',
      status,
      s.warmup ? `${num(s.warmup.sent_today)} / ${num(s.warmup.cap_today)} today` : 'none',
      s.lease_expires_at ? when(s.lease_expires_at) : '—',
      when(s.last_heartbeat),
    ];
  });
  box.replaceChildren(
    table('Sessions', ['Session', 'Phone', 'Status', 'Warm-up', 'Lease expires', 'Last heartbeat'], rows),
  );
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
