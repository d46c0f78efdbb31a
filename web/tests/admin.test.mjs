// Browser tests of the admin's view (docs/dashboard.md "The admin view") on a real
// `quotum serve`: three tenants with different usage made through the admin API, the
// admin key signs in and sees them by risk (GET /admin/risk), views one read only (the
// admin key plus X-Quotum-Tenant on every request, a banner, no write controls, its cards
// live), goes back; axe at 1280 and 375 px, no horizontal scroll. Same browser setup as
// dashboard.test.mjs. Run: `npm test` in web/ (scripts/test-web.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_KEY, axeViolations, client, expectEmbeddedDashboard, launchChromium, startServer,
} from './server.mjs';

const DAY_MS = 86_400_000;
const LIVE_MS = 2_000;
// The page's day format (src/format.ts): "20 Dec 2026", in UTC.
const utcDay = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
const day = (iso) => utcDay.format(new Date(iso));
const oneDecimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const percent = (n) => `${oneDecimal.format(n)} %`;
/** Asserts that a cell "<n> % <band>" shows a risk read between the two API reads `a`
 * and `b` (a projection moves with the clock: the page read it at its own moment). */
function assertRiskBetween(text, band, a, b) {
  const m = /^([\d,]+\.\d) % (\S+)$/.exec(text);
  assert.ok(m, `not a risk cell: ${text}`);
  assert.equal(m[2], band, text);
  const shown = Number(m[1].replaceAll(',', ''));
  assert.ok(shown >= Math.min(a, b) - 0.05 && shown <= Math.max(a, b) + 0.05,
    `${text} is not between ${a} and ${b}`);
}
const riskOf = (json, id) => json.tenants.find((t) => t.id === id);

let server, api, browser, page;
const keys = {};
const consoleErrors = [];
const requests = [];

/** Three tenants, riskiest first: Starter at 95 % (two alerts), Pro at 75 %, Pro at 1 %. */
const TENANTS = [
  { id: 'acme-high', name: 'Acme High Ltd', plan: 'starter', used: 950, daysIn: 0 },
  { id: 'beta-mid', name: 'Beta Mid Ltd', plan: 'pro', used: 7500, daysIn: 10 },
  { id: 'gamma-low', name: 'Gamma Low Ltd', plan: 'pro', used: 100, daysIn: 10 },
];

async function consume(id, quantity) {
  const r = await api.tenant(keys[id], 'POST', '/api/v2/quota/consume', { meter: 'messages_sent', quantity, channel: 'whatsapp' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.allowed, true, r.text);
}


const rows = () => page.locator('#risk-table tbody tr');
const row = (id) => page.locator(`#risk-table tbody tr[data-tenant="${id}"]`);
const cells = async (id) => (await row(id).locator('th, td').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
const card = () => page.locator('#meter-cards [data-meter="messages_sent"]');

describe('admin view', () => {
  before(async () => {
    server = await startServer();
    api = client(server.base);
    for (const t of TENANTS) {
      // Ten days in with nothing used before today, the projection is what is used (alerts.test.mjs).
      const start = new Date(Math.floor((Date.now() - t.daysIn * DAY_MS) / 1000) * 1000).toISOString();
      const r = await api.admin('POST', '/admin/tenants', { id: t.id, name: t.name, plan: t.plan, subscription_start: start });
      assert.equal(r.status, 201, r.text);
      keys[t.id] = r.json.api_key;
      await consume(t.id, t.used);
    }
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await expectEmbeddedDashboard(server.base);
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => requests.push({ url: r.url(), at: Date.now(), method: r.method(), headers: r.headers() }));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) {
      const code = await server.stop();
      assert.equal(code, 0, `quotum did not exit cleanly:\n${server.log()}`);
    }
  });

  it('the routes: /admin/risk by risk, a tenant key refused; the admin reads as a tenant, GET only', async () => {
    const risk = await api.admin('GET', '/admin/risk');
    assert.equal(risk.status, 200, risk.text);
    assert.equal(risk.json.considered, 3);
    assert.deepEqual(risk.json.tenants.map((t) => t.id), TENANTS.map((t) => t.id));
    const [high, mid] = risk.json.tenants;
    assert.ok(high.risk_percent >= 95, JSON.stringify(high));
    assert.deepEqual([high.meter, high.used, high.limit, high.percentage, high.band, high.alerts],
      ['messages_sent', 950, 1000, 95, 'red', 2]);
    assert.deepEqual([mid.risk_percent, mid.used, mid.limit, mid.band, mid.alerts], [75, 7500, 10000, 'yellow', 0]);
    assert.equal((await api.admin('GET', '/admin/risk?limit=2')).json.tenants.length, 2);
    assert.equal((await api.admin('GET', '/admin/risk?limit=0')).status, 400);
    assert.equal((await api.tenant(keys['beta-mid'], 'GET', '/admin/risk')).status, 403);

    const as = (tenant, method, path, body) =>
      api.call(method, path, body, { 'X-API-Key': ADMIN_KEY, 'X-Quotum-Tenant': tenant });
    const usage = await as('beta-mid', 'GET', '/api/v2/usage/current');
    assert.equal(usage.status, 200, usage.text);
    assert.equal(usage.json.tenant_id, 'beta-mid');
    assert.equal(usage.json.meters.messages_sent.used, 7500);
    const write = await as('beta-mid', 'POST', '/api/v2/quota/consume', { meter: 'messages_sent', quantity: 1, channel: 'whatsapp' });
    assert.equal(write.status, 403, write.text);
    assert.equal(write.json.code, 'read_only');
    assert.equal((await as('nobody', 'GET', '/api/v2/usage/current')).status, 404);
  });

  it('signs in with the admin key and lists the tenants by risk', async () => {
    const earlier = (await api.admin('GET', '/admin/risk')).json;
    await page.goto(server.base + '/');
    await page.locator('#api-key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Tenants by risk' }).waitFor();
    assert.ok(await page.locator('#dashboard').isHidden());
    assert.equal(await page.locator('#who').textContent(), 'Administrator');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('quotum.api_key')), ADMIN_KEY);
    assert.deepEqual(await rows().evaluateAll((rs) => rs.map((r) => r.dataset.tenant)), TENANTS.map((t) => t.id));
    assert.deepEqual(await page.locator('#risk-table thead th').allInnerTexts(),
      ['Tenant', 'View', 'Risk', 'Meter', 'Forecast', 'Alerts', 'Plan', 'Period ends']);

    const { json } = await api.admin('GET', '/admin/risk');
    const [high, mid, low] = json.tenants;
    const highCells = await cells('acme-high');
    assert.equal(highCells[0], 'acme-high Acme High Ltd');
    assertRiskBetween(highCells[2], 'Critical', riskOf(earlier, 'acme-high').risk_percent, high.risk_percent);
    assert.equal(highCells[3], 'Messages sent 950 / 1,000 (95.0 %)');
    assert.equal(highCells[5], '2');
    assert.equal(highCells[6], 'starter');
    assert.equal(highCells[7], day(high.period_end));
    assert.deepEqual(await cells('beta-mid'), ['beta-mid Beta Mid Ltd', 'View', '75.0 % Warning',
      'Messages sent 7,500 / 10,000 (75.0 %)', mid.forecast ? '— 75.0 % projected' : '—', '0', 'pro', day(mid.period_end)]);
    assertRiskBetween((await cells('gamma-low'))[2], 'OK', riskOf(earlier, 'gamma-low').risk_percent, low.risk_percent);
    // The forecast column: "Limit reached on <day>" when the projection reaches it, else "—".
    const forecast = highCells[4];
    if (high.forecast?.limit_reached_at) assert.match(forecast, new RegExp(`^Limit reached on ${day(high.forecast.limit_reached_at)}`));
    else assert.match(forecast, /^—/);
    // The band chip is coloured and worded.
    const chip = row('acme-high').locator('.badge');
    assert.equal(await chip.getAttribute('data-band'), 'red');
    assert.equal(await chip.textContent(), 'Critical');
  });

  it('is keyboard reachable and has no serious or critical axe violations', async () => {
    await page.locator('#admin-refresh').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'risk-table');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'View tenant acme-high (Acme High Ltd)');
    assert.deepEqual(await axeViolations(page), []);
  });

  it('views a tenant read only: the admin key plus X-Quotum-Tenant, a banner, no write controls, live cards', async () => {
    const since = Date.now();
    await page.getByRole('button', { name: 'View tenant beta-mid (Beta Mid Ltd)' }).focus();
    await page.keyboard.press('Enter');
    const banner = page.getByRole('heading', { name: 'Viewing tenant beta-mid as admin' });
    await banner.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'viewing-title');
    assert.ok(await page.locator('#admin').isHidden());
    await card().filter({ hasText: '7,500 / 10,000' }).waitFor();
    assert.match(await page.locator('#who').textContent(), /^beta-mid · pro plan$/);
    await page.locator('#plan-name').filter({ hasText: 'Pro' }).waitFor();
    // Read only: no control that would write is shown (plan change, pending cancel, webhooks).
    for (const id of ['plan-form', 'plan-pending-cancel', 'webhook-form', 'webhook-secret']) {
      assert.ok(await page.locator(`#${id}`).isHidden(), `#${id} is shown`);
    }
    for (const name of ['Preview', 'Add webhook', 'Cancel the downgrade']) {
      assert.equal(await page.getByRole('button', { name, exact: true }).count(), 0, `a "${name}" button is offered`);
    }
    // The stream works for the admin too: a consume shows within 2 s.
    await page.locator('#live[data-state="live"]').waitFor({ timeout: 5_000 });
    await consume('beta-mid', 100);
    const started = Date.now();
    await card().filter({ hasText: '7,600 / 10,000' }).waitFor({ timeout: 5_000 });
    const took = Date.now() - started;
    assert.ok(took <= LIVE_MS, `the card changed after ${took} ms`);
    console.log(`# admin view: the card changed ${took} ms after the consume`);
    await page.locator('#panels-updated').filter({ hasText: 'updated' }).waitFor({ timeout: 10_000 });
    const view = requests.filter((r) => r.at >= since && r.url.includes('/api/'));
    assert.ok(view.some((r) => r.url.endsWith('/api/v2/usage/stream')), 'no stream was opened');
    for (const r of view) {
      assert.equal(r.method, 'GET', `${r.method} ${r.url}`);
      assert.equal(r.headers['x-quotum-tenant'], 'beta-mid', r.url);
      assert.equal(r.headers.authorization, `Bearer ${ADMIN_KEY}`, r.url);
      assert.ok(!r.url.includes(ADMIN_KEY), `key in ${r.url}`);
    }
    assert.deepEqual(await axeViolations(page), []);
  });

  it('goes back to the tenants, the view\'s stream closed, and refreshes them', async () => {
    const closed = new Promise((ok) => page.on('requestfailed', (r) => r.url().endsWith('/api/v2/usage/stream') && ok(r.failure()?.errorText)));
    await page.getByRole('button', { name: 'Back to tenants' }).click();
    await page.locator('#admin').waitFor();
    assert.ok(await page.locator('#dashboard').isHidden());
    assert.ok(await page.locator('#viewing').isHidden());
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'View tenant beta-mid (Beta Mid Ltd)');
    assert.match(await closed, /ABORTED/);
    assert.equal(await page.locator('#who').textContent(), 'Administrator');
    await page.locator('#admin-refresh').click();
    await row('beta-mid').filter({ hasText: '7,600 / 10,000 (76.0 %)' }).waitFor({ timeout: 5_000 });
  });

  it('fits 375 px without horizontal scrolling, the View buttons in sight', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(300);
    const { scroll, width } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      width: document.documentElement.clientWidth,
    }));
    assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px viewport`);
    const box = await row('acme-high').getByRole('button', { name: /^View tenant/ }).boundingBox();
    assert.ok(box.x + box.width <= 375, `the View button ends at ${box.x + box.width} px`);
    // The table scrolls inside its focusable region.
    assert.deepEqual(await axeViolations(page), []);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('logged no console errors (the sign-in\'s refused tenant read aside)', () => {
    // The admin key is tried on usage/current first (as a tenant key): the browser logs that
    // 401 itself ("Failed to load resource"); the page adds nothing.
    assert.deepEqual(consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 401/.test(m)), []);
  });

  it('signs out and forgets the admin key', async () => {
    await page.locator('#sign-out').click();
    await page.locator('#api-key').waitFor();
    assert.ok(await page.locator('#admin').isHidden());
    assert.equal(await rows().count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('quotum.api_key')), null);
  });
});
