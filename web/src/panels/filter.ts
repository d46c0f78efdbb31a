// The date filter (Today / 7 d / 30 d / custom) of the daily chart, the channel
// table and the exports: one query string for the report routes.
import { byId } from '../format';

export type Preset = 'today' | '7d' | '30d' | 'custom';

const LABELS: Record<Exclude<Preset, 'custom'>, string> = {
  today: 'today',
  '7d': 'the last 7 days',
  '30d': 'the last 30 days',
};

/** The chosen range as report-route parameters, e.g. `range=7d` or `from=...&to=...`;
 *  null while a custom range is incomplete or reversed (the message says why). */
export function rangeQuery(): string | null {
  const preset = byId<HTMLSelectElement>('range-preset').value as Preset;
  const note = byId('range-note');
  if (preset !== 'custom') {
    note.textContent = '';
    return `range=${preset}`;
  }
  const from = byId<HTMLInputElement>('range-from').value;
  const to = byId<HTMLInputElement>('range-to').value;
  if (!from || !to) {
    note.textContent = 'Choose both dates.';
    return null;
  }
  if (from > to) {
    note.textContent = 'The first date must not be after the last.';
    return null;
  }
  note.textContent = '';
  return `from=${from}&to=${to}`;
}

/** Words for the chosen range ("the last 7 days", "2026-01-01 to 2026-01-31"). */
export function rangeLabel(): string {
  const preset = byId<HTMLSelectElement>('range-preset').value as Preset;
  if (preset !== 'custom') return LABELS[preset];
  return `${byId<HTMLInputElement>('range-from').value} to ${byId<HTMLInputElement>('range-to').value}`;
}

/** Shows the date inputs for a custom range only; calls `changed` on every change. */
export function watchFilter(changed: () => void): void {
  const preset = byId<HTMLSelectElement>('range-preset');
  const custom = byId('range-custom');
  const today = new Date().toISOString().slice(0, 10);
  for (const id of ['range-from', 'range-to']) {
    const input = byId<HTMLInputElement>(id);
    input.max = today;
    if (!input.value) input.value = today;
  }
  preset.onchange = () => {
    custom.hidden = preset.value !== 'custom';
    changed();
  };
  byId('range-apply').onclick = () => changed();
}
