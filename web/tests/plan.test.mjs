// Browser tests of the dashboard's plan panel (issue 14) on a real `quotum serve`:
// a Pro tenant half-way through its period previews an upgrade to Business (the
// amount shown is the preview route's proration_cents), confirms it (the plan and the
// meter cards' limits change at once), schedules a downgrade and cancels it. Same
// browser setup as dashboard.test.mjs. Run: `npm test` in web/ (scripts/test-web.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  axeViolations, client, expectEmbeddedDashboard, launchChromium, startServer,
} from './server.mjs';

const DAY_MS = 86_400_000;
// The page's formats (src/format.ts): money in US dollars, instants in UTC.
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const money = (cents) => usd.format(cents / 100);
const utc = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
const when = (iso) => `${utc.format(new Date(iso))} UTC`;

let server, api, browser, page, key;
const consoleErrors = [];

const text = async (selector) => (await page.locator(selector).textContent()).trim();
const messagesCard = () => page.locator('#meter-cards [data-meter="messages_sent"] .value');

async function subscription() {
  const r = await api.tenant(key, 'GET', '/api/v2/subscription');
  assert.equal(r.status, 200, r.text);
  return r.json;
}

async function preview(plan) {
  const r = await api.tenant(key, 'POST', '/api/v2/subscription/preview', { plan });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Chooses `plan` in the picker and presses Preview; the answer the page got. */
async function previewInPage(plan) {
  await page.locator('#plan-choice').selectOption(plan);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v2/subscription/preview')),
    page.getByRole('button', { name: 'Preview' }).click(),
  ]);
  assert.equal(res.status(), 200);
  await page.locator('#plan-quote-amount').waitFor();
  return res.json();
}

describe('plan panel', () => {
  before(async () => {
    server = await startServer();
    api = client(server.base);
    // A Pro subscription that started 15 days ago: an upgrade now costs about half a month's difference.
    const start = new Date(Math.floor((Date.now() - 15 * DAY_MS) / 1000) * 1000).toISOString();
    const t = await api.admin('POST', '/admin/tenants', { id: 'webplan', name: 'Plan Test Ltd', plan: 'pro', subscription_start: start });
    assert.equal(t.status, 201, t.text);
    key = t.json.api_key;
    const addon = await api.tenant(key, 'POST', '/api/v2/addons', { meter: 'chatbot_sessions', quantity: 1000 });
    assert.equal(addon.status, 201, addon.text);
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await expectEmbeddedDashboard(server.base);
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) {
      const code = await server.stop();
      assert.equal(code, 0, `quotum did not exit cleanly:\n${server.log()}`);
    }
  });

  it('shows the plan, its price, the period and the add-ons; offers no contract plan', async () => {
    await page.goto(server.base + '/');
    await page.locator('#api-key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#plan-name').filter({ hasText: 'Pro' }).waitFor();
    await page.locator('#plan-changes table').waitFor();
    const sub = await subscription();
    assert.equal(await text('#plan-price'), '$29.00 per period');
    assert.equal(await text('#plan-period'), `${when(sub.period_start)} to ${when(sub.period_end)}`);
    assert.ok(await page.locator('#plan-pending').isHidden());
    assert.match(await page.locator('#plan-addons tbody').innerText(), /Chatbot sessions\s+1,000\s+\$30\.00\s+Renews each period/);
    assert.match(await page.locator('#plan-changes tbody').innerText(), /Add-on bought/);
    // Neither the current plan nor Enterprise (priced by contract): the cheaper first.
    const offered = await page.locator('#plan-choice option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(offered, ['starter', 'business']);
    assert.ok(await page.locator('#plan-confirm').isHidden(), 'Confirm shows before a preview');
    assert.equal((await messagesCard().textContent()).trim(), '0 / 10,000');
  });

  it('the upgrade preview amount is the preview route\'s proration_cents, and changes nothing', async () => {
    const before = await preview('business');
    const shown = await previewInPage('business');
    const after = await preview('business');
    assert.equal(shown.kind, 'upgrade');
    // The page shows what the route answered it...
    assert.equal(await text('#plan-quote-amount'), `${money(shown.proration_cents)} now`);
    assert.equal(await page.locator('#plan-quote-amount').getAttribute('data-cents'), String(shown.proration_cents));
    // ... which is what the route answers the test too (up to the cent that may tick meanwhile) ...
    assert.ok(before.proration_cents >= shown.proration_cents && shown.proration_cents >= after.proration_cents,
      `${before.proration_cents} >= ${shown.proration_cents} >= ${after.proration_cents}`);
    // ... and (99.00 - 29.00) × the part of the period left, rounded down: about half.
    const sub = await subscription();
    const length = Date.parse(sub.period_end) - Date.parse(sub.period_start);
    const left = Date.parse(sub.period_end) - Date.now();
    const expected = Math.floor((7000 * left) / length);
    assert.ok(Math.abs(shown.proration_cents - expected) <= 2, `${shown.proration_cents} vs about ${expected}`);
    assert.ok(shown.proration_cents > 3000 && shown.proration_cents < 4000, String(shown.proration_cents));
    console.log(`# upgrade preview: ${money(shown.proration_cents)} now`);
    assert.match(await page.locator('#plan-quote').innerText(), /Upgrade from Pro to Business/);
    assert.match(await page.locator('#plan-quote').innerText(), /Messages sent: 50,000 \(now 10,000\)/);
    const confirm = page.getByRole('button', { name: 'Confirm upgrade to Business' });
    assert.ok(await confirm.isVisible());
    // A preview changes nothing.
    assert.equal(sub.plan, 'pro');
    assert.equal(sub.changes.filter((c) => c.kind === 'upgrade').length, 0);
    // Another choice drops the preview and its Confirm.
    await page.locator('#plan-choice').selectOption('starter');
    assert.ok(await confirm.isHidden());
    assert.equal(await page.locator('#plan-quote').innerText(), '');
  });

  it('confirms the upgrade: the plan shows Business and the limits rise at once', async () => {
    await previewInPage('business');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v2/subscription/change')),
      page.getByRole('button', { name: 'Confirm upgrade to Business' }).click(),
    ]);
    const line = await res.json();
    assert.equal(line.state, 'applied');
    await page.locator('#plan-name').filter({ hasText: 'Business' }).waitFor();
    assert.equal(await text('#plan-price'), '$99.00 per period');
    // The upgrade's limits apply at once: the page reads usage/current right after the change.
    await messagesCard().filter({ hasText: '0 / 50,000' }).waitFor({ timeout: 5_000 });
    assert.equal(await text('#plan-status'), `Changed to Business: ${money(line.proration_cents)} charged now; the new limits apply.`);
    await page.locator('#plan-changes tbody tr').first().filter({ hasText: 'Pro to Business' }).waitFor();
    assert.match(await page.locator('#plan-changes tbody tr').first().innerText(),
      new RegExp(`^Upgrade, Pro to Business\\s+Applied\\s+\\d+ \\w+ \\d{4}\\s+\\${money(line.proration_cents)}$`));
    const sub = await subscription();
    assert.equal(sub.plan, 'business');
    assert.equal(sub.changes[0].proration_cents, line.proration_cents);
    const offered = await page.locator('#plan-choice option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(offered, ['starter', 'pro']);
    assert.ok(await page.locator('#plan-confirm').isHidden());
  });

  it('schedules a downgrade by keyboard for the period\'s end, then cancels it', async () => {
    await page.locator('#plan-choice').selectOption('starter');
    await page.locator('#plan-choice').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'plan-preview');
    await page.keyboard.press('Enter');
    await page.locator('#plan-quote-amount').waitFor();
    const sub0 = await subscription();
    assert.equal(await text('#plan-quote-amount'), `Takes effect on ${when(sub0.period_end)}`);
    assert.match(await page.locator('#plan-quote').innerText(), /Downgrade from Business to Starter/);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Confirm downgrade to Starter');
    await page.keyboard.press('Enter');
    await page.locator('#plan-pending').waitFor();
    assert.equal(await text('#plan-pending-text'),
      `Changes to Starter on ${when(sub0.period_end)} (requested ${when((await subscription()).pending_plan.requested_at)}).`);
    assert.match(await text('#plan-status'), /^The downgrade to Starter is scheduled for /);
    let sub = await subscription();
    assert.equal(sub.plan, 'business', 'a downgrade waits for the period\'s end');
    assert.equal(sub.pending_plan.plan, 'starter');
    assert.equal((await messagesCard().textContent()).trim(), '0 / 50,000');

    // Preview another downgrade meanwhile: it says it would replace the pending one.
    await previewInPage('pro');
    assert.match(await page.locator('#plan-quote').innerText(), /replaces the pending change to Starter/);
    // The whole panel (pending change, preview, add-ons, ledger) passes axe.
    assert.deepEqual(await axeViolations(page), []);

    await page.getByRole('button', { name: 'Cancel the downgrade' }).click();
    await page.locator('#plan-pending').waitFor({ state: 'hidden' });
    assert.equal(await text('#plan-status'), 'The downgrade to Starter is cancelled: the plan stays Business.');
    sub = await subscription();
    assert.equal(sub.pending_plan, null);
    assert.equal(sub.plan, 'business');
    assert.equal(sub.changes[0].state, 'cancelled');
    await page.locator('#plan-changes tbody tr').first().filter({ hasText: 'Cancelled' }).waitFor();
    // The preview spoke of the pending change: it is dropped.
    assert.ok(await page.locator('#plan-confirm').isHidden());
    assert.equal(await page.locator('#plan-quote').innerText(), '');
  });

  it('fits 375 px without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(300);
    const { scroll, width } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      width: document.documentElement.clientWidth,
    }));
    assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px viewport`);
    const panel = await page.locator('#plan').evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(panel <= 375, `the plan panel is ${panel} px wide`);
    // The tables that scroll inside their box at this width must stay reachable (axe's scrollable-region-focusable).
    assert.deepEqual(await axeViolations(page), []);
    if (process.env.MOBILE_SHOT) await page.locator('#plan').screenshot({ path: process.env.MOBILE_SHOT.replace(/(\.png)?$/, '-plan.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });

  it('shows an error from the API in the panel', async () => {
    // As if the catalog had changed under the page: the request asks for the contract
    // plan, and the server's real 403 plan_not_selectable is what the panel shows.
    await page.route('**/api/v2/subscription/preview', (route) =>
      route.continue({ postData: JSON.stringify({ plan: 'enterprise' }) }),
    );
    await page.locator('#plan-choice').selectOption('pro');
    await page.getByRole('button', { name: 'Preview' }).click();
    await page.locator('#plan-error').filter({ hasText: 'priced by contract' }).waitFor();
    assert.equal(await text('#plan-error'), 'The preview failed: "enterprise" is priced by contract: an administrator changes it.');
    assert.ok(await page.locator('#plan-confirm').isHidden());
    await page.unroute('**/api/v2/subscription/preview');
    // The browser logs the 403 itself ("Failed to load resource"); the page adds nothing.
    assert.deepEqual(consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 403/.test(m)), []);
    assert.equal((await subscription()).plan, 'business');
  });
});
