// The "Live" / "Polling" indicator in the period box: whether the usage stream is
// open (the cards change as the usage does) or the page polls usage/current alone.
import type { StreamState } from '../stream';
import { byId, el } from '../format';

const WORDS: Record<StreamState, [string, string]> = {
  live: ['Live', 'The cards change as the usage does.'],
  polling: ['Polling', 'The cards change at each read of the usage.'],
};

/** The indicator, made once beside the status line (role="status": a change is announced). */
function indicator(): HTMLElement {
  const found = document.getElementById('live');
  if (found) return found;
  const box = el('p', 'live');
  box.id = 'live';
  box.setAttribute('role', 'status');
  box.hidden = true;
  const dot = el('span', 'live-dot');
  dot.setAttribute('aria-hidden', 'true');
  box.append(dot, el('strong', 'live-word'), ' ', el('span', 'muted live-why'));
  byId('status').before(box);
  return box;
}

/** Shows the stream's state (`why`: the reason it is not live, if any); null hides it. */
export function showLive(state: StreamState | null, why = ''): void {
  const box = indicator();
  box.hidden = state === null;
  if (state === null) return;
  const [word, what] = WORDS[state];
  box.dataset.state = state;
  box.querySelector('.live-word')!.textContent = word;
  box.querySelector('.live-why')!.textContent = why ? `${why} ${what}` : what;
}
