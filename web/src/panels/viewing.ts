// The banner above a tenant's dashboard while an admin views it (read only), with
// "Back to tenants".
import { byId, el } from '../format';

/** The banner, made once at the top of the dashboard (web/index.html has no markup for it). */
function banner(): HTMLElement {
  const found = document.getElementById('viewing');
  if (found) return found;
  const box = el('section', 'viewing');
  box.id = 'viewing';
  box.hidden = true;
  box.setAttribute('aria-labelledby', 'viewing-title');
  const title = el('h2');
  title.id = 'viewing-title';
  title.tabIndex = -1;
  const back = el('button', 'secondary', 'Back to tenants');
  back.id = 'viewing-back';
  back.type = 'button';
  box.append(
    title,
    el('p', '', 'Read only: this view offers no plan, add-on or webhook changes.'),
    back,
  );
  byId('dashboard').prepend(box);
  return box;
}

/** Shows the banner for `tenantId` (null hides it); `back` runs on "Back to tenants". */
export function showViewing(tenantId: string | null, back?: () => void): void {
  const box = banner();
  box.hidden = tenantId === null;
  if (tenantId === null) return;
  byId('viewing-title').textContent = `Viewing tenant ${tenantId} as admin`;
  byId('viewing-back').onclick = () => back?.();
  byId('viewing-title').focus();
}
