// Browser tests of the dashboard served by a real `quotum serve`, driven by
// playwright-core in Debian's Chromium (headless, --no-sandbox: CI runs as root;
// no browser is downloaded). Run: `npm test` in web/ (scripts/test-web.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  axeViolations, client, expectEmbeddedDashboard, launchChromium, startServer,
} from './server.mjs';

const docs = join(dirname(fileURLToPath(import.meta.url)), '../../docs');
// Band colours of style.css (--green, --yellow, --red).
const COLOURS = { green: 'rgb(26, 127, 55)', yellow: 'rgb(154, 103, 0)', red: 'rgb(207, 34, 46)' };
// The usage poll is every 1.5 s on the Pro plan (100 requests/min), so that a
// change shows within 2 s: one interval plus the request and the drawing.
const LIVE_MS = 2_000;

let server, api, browser, context, page, key;
const consoleErrors = [];
const requests = [];

async function consume(quantity, channel = 'whatsapp') {
  const r = await api.tenant(key, 'POST', '/api/v2/quota/consume', { meter: 'messages_sent', quantity, channel });
  assert.equal(r.status, 200, r.text);
}

const card = (meter) => page.locator(`#meter-cards [data-meter="${meter}"]`);

/** Waits until the messages_sent card shows `band`; returns the time it took. */
async function waitForBand(band) {
  const started = Date.now();
  await card('messages_sent').and(page.locator(`[data-band="${band}"]`)).waitFor({ timeout: 10_000 });
  return Date.now() - started;
}

async function fillColour(meter) {
  return card(meter).locator('.fill').evaluate((e) => getComputedStyle(e).backgroundColor);
}

describe('dashboard', () => {
  before(async () => {
    server = await startServer();
    api = client(server.base);
    const t = await api.admin('POST', '/admin/tenants', {
      id: 'webtest', name: 'Web Test Ltd', plan: 'pro', subscription_start: new Date().toISOString(),
    });
    assert.equal(t.status, 201, t.text);
    key = t.json.api_key;
    let r = await api.tenant(key, 'POST', '/api/v2/sessions', { id: 'main', phone: '+15550100' });
    assert.equal(r.status, 201, r.text);
    r = await api.tenant(key, 'PATCH', '/api/v2/sessions/main', { status: 'working' });
    assert.equal(r.status, 200, r.text);
    r = await api.tenant(key, 'POST', '/api/v2/messages/received', { channel: 'telegram', quantity: 40 });
    assert.equal(r.status, 200, r.text);
    // A chatbot-session pack, so that the plan panel (and the screenshot) lists an add-on.
    r = await api.tenant(key, 'POST', '/api/v2/addons', { meter: 'chatbot_sessions', quantity: 1000 });
    assert.equal(r.status, 201, r.text);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await expectEmbeddedDashboard(server.base);
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => requests.push({ url: r.url(), at: Date.now(), headers: r.headers() }));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) {
      const code = await server.stop();
      assert.equal(code, 0, `quotum did not exit cleanly:\n${server.log()}`);
    }
  });

  it('serves the page with a CSP and signs in with the keyboard', async () => {
    const res = await page.goto(server.base + '/');
    assert.equal(res.status(), 200);
    assert.match(res.headers()['content-security-policy'], /default-src 'self'/);
    await page.locator('#api-key').waitFor();
    // Tab from the top reaches the key field (skip link first), Enter submits.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'api-key');
    await page.keyboard.type(key);
    await page.keyboard.press('Enter');
    await card('messages_sent').waitFor();
    assert.equal((await card('messages_sent').locator('.value').textContent()).trim(), '0 / 10,000');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('quotum.api_key')), key);
    assert.ok(!page.url().includes(key), 'the key is in the URL');
    assert.match(await page.locator('#period-reset').textContent(), /^Resets in \d+ d \d+ h$/);
    assert.equal(await fillColour('messages_sent'), COLOURS.green);
    // Gauges for the concurrent meters, sessions among them (one working session).
    const sessions = page.locator('#gauges [data-meter="sessions_active"] .value');
    assert.equal((await sessions.textContent()).trim(), '1 / 3');
    // The plan panel (plan.test.mjs drives it): the plan, its price and the add-on, whose
    // units are in the chatbot sessions' limit (2,000 on Pro).
    await page.locator('#plan-name').filter({ hasText: 'Pro' }).waitFor();
    await page.locator('#plan-price').filter({ hasText: '$29.00 per period' }).waitFor();
    assert.match(await page.locator('#plan-addons tbody').innerText(), /Chatbot sessions\s+1,000\s+\$30\.00/);
    assert.equal((await card('chatbot_sessions').locator('.value').textContent()).trim(), '0 / 3,000');
  });

  it('turns the bar amber past 70 % and red past 90 %, live within 2 s', async () => {
    await consume(7100);
    const amber = await waitForBand('yellow');
    assert.ok(amber <= LIVE_MS, `the amber band showed after ${amber} ms`);
    assert.equal(await fillColour('messages_sent'), COLOURS.yellow);
    assert.match(await card('messages_sent').locator('.badge').textContent(), /Warning/);
    await consume(1900, 'telegram');
    const red = await waitForBand('red');
    assert.ok(red <= LIVE_MS, `the red band showed after ${red} ms`);
    assert.equal(await fillColour('messages_sent'), COLOURS.red);
    assert.equal((await card('messages_sent').locator('.value').textContent()).trim(), '9,000 / 10,000');
    console.log(`# live update: amber after ${amber} ms, red after ${red} ms`);
  });

  it('draws the charts, channels, sessions and events on refresh', async () => {
    await page.locator('#refresh').click();
    await page.locator('#channels table').filter({ hasText: '9,000' }).waitFor({ timeout: 10_000 });
    const channels = await page.locator('#channels tbody').innerText();
    assert.match(channels, /WhatsApp\s+7,100/);
    assert.match(channels, /Telegram\s+1,900/);
    assert.equal(await page.locator('#daily-chart canvas').count(), 1);
    assert.equal(await page.locator('#history-chart canvas').count(), 1);
    assert.match(await page.locator('#daily-chart').getAttribute('aria-label'), /9,000 sent/);
    const session = await page.locator('#sessions tbody tr').first().innerText();
    assert.match(session, /main\s+\+15550100\s+working/);
    // Pro has no messaging tiers: the session's messaging_tier is null, and the table has
    // no tier column.
    const listed = await api.tenant(key, 'GET', '/api/v2/sessions/main');
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.messaging_tier, null);
    assert.deepEqual(await page.locator('#sessions thead th').allInnerTexts(),
      ['Session', 'Phone', 'Status', 'Warm-up', 'Lease expires', 'Last heartbeat']);
    assert.equal(await page.locator('#sessions .tier').count(), 0);
    await page.locator('#channel-meter').selectOption('messages_received');
    await page.locator('#channels tbody').filter({ hasText: '40 (100 %)' }).waitFor();
    await page.locator('#channel-meter').selectOption('messages_sent');
    await page.locator('#channels tbody').filter({ hasText: '9,000' }).waitFor();
    assert.ok(await page.locator('#refresh').isDisabled(), 'refresh is not limited');
  });

  it('filters by date and exports CSV and PDF with the key in a header only', async () => {
    const today = new Date().toISOString().slice(0, 10);
    await page.locator('#range-preset').selectOption('today');
    await page.locator('#daily-title').filter({ hasText: 'Per day, today' }).waitFor();
    assert.match(await page.locator('#daily-chart').getAttribute('aria-label'), /today \(1 day\): 9,000 sent/);
    assert.match(await page.locator('#channels-title').textContent(), /By channel, today/);
    assert.match(await page.locator('#channels tbody').innerText(), /WhatsApp\s+7,100/);
    assert.match(await page.locator('#hourly-chart').getAttribute('aria-label'), /per hour today \(UTC\): 9,000/);
    const [csv] = await Promise.all([page.waitForEvent('download'), page.locator('#export-csv').click()]);
    assert.equal(csv.suggestedFilename(), `quotum-usage-webtest-${today}-${today}.csv`);
    const lines = readFileSync(await csv.path(), 'utf8').split('\r\n');
    assert.equal(lines[0], 'date,meter,channel,units');
    assert.equal(lines.at(-1), '', 'the last record ends with CRLF');
    for (const row of [`${today},messages_sent,whatsapp,7100`, `${today},messages_sent,telegram,1900`,
      `${today},messages_received,telegram,40`]) {
      assert.ok(lines.includes(row), `${row} not in:\n${lines.join('\n')}`);
    }
    const [pdf] = await Promise.all([page.waitForEvent('download'), page.locator('#export-pdf').click()]);
    assert.equal(pdf.suggestedFilename(), `quotum-usage-webtest-${today}-${today}.pdf`);
    assert.equal(readFileSync(await pdf.path()).subarray(0, 5).toString(), '%PDF-');
    const exports = requests.filter((r) => r.url.includes('/api/v2/usage/export'));
    assert.equal(exports.length, 2);
    for (const r of exports) assert.equal(r.headers.authorization, `Bearer ${key}`);
    // A reversed custom range is refused on the page, before any request.
    await page.locator('#range-preset').selectOption('custom');
    await page.locator('#range-from').fill('2026-02-10');
    await page.locator('#range-to').fill('2026-02-01');
    await page.locator('#range-apply').click();
    await page.locator('#range-note').filter({ hasText: 'must not be after' }).waitFor();
    await page.locator('#range-preset').selectOption('30d');
    await page.locator('#daily-title').filter({ hasText: 'the last 30 days' }).waitFor();
    await page.locator('#export-status').filter({ hasText: 'PDF file downloaded' }).waitFor();
  });

  it('stays within its rate-limit budget and never puts the key in a URL', async () => {
    const since = Date.now();
    await page.waitForTimeout(6_500);
    const recent = requests.filter((r) => r.at >= since && r.url.includes('/api/'));
    const usage = recent.filter((r) => r.url.endsWith('/api/v2/usage/current'));
    assert.ok(usage.length >= 4 && usage.length <= 5, `usage/current read ${usage.length} times in 6.5 s`);
    assert.equal(recent.length, usage.length, 'the panels were read between their minutes');
    assert.equal(await page.locator('#status').getAttribute('data-interval'), '1500');
    for (const r of requests) {
      assert.ok(!r.url.includes(key), `key in ${r.url}`);
      if (r.url.includes('/api/')) assert.equal(r.headers.authorization, `Bearer ${key}`);
    }
  });

  it('shows a session\'s messaging tier (the sessions answer rewritten in the browser)', async () => {
    // No plan of examples/quotum.toml has messaging_tiers, so the server answers null;
    // the page's rendering of a tier is checked on the real answer with tiers written in
    // (docs/api.md "Messaging tiers"): a level-0 session short of qualifying, one at its
    // cap and qualified for the next step, one unlimited, and one without a tier.
    const at = new Date(Date.now() + 3 * 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await page.route('**/api/v2/sessions', async (route) => {
      const response = await route.fetch();
      const json = await response.json();
      const main = json.sessions.find((s) => s.id === 'main');
      main.messaging_tier = { level: 0, limit: 250, used_24h: 12, unique_7d: 40,
        next: { limit: 1000, needed: 85, at: null } };
      json.sessions.push(
        { ...main, id: 'sales', phone: '+15550101', messaging_tier: { level: 1, limit: 1000, used_24h: 1000,
          unique_7d: 640, next: { limit: 10000, needed: 0, at } } },
        { ...main, id: 'support', phone: '+15550102', messaging_tier: { level: 4, limit: null, used_24h: 12345,
          unique_7d: 40000, next: null } },
        { ...main, id: 'spare', phone: '+15550103', messaging_tier: null },
      );
      // The rate-limit headers kept (the page reads them); the length is the new body's.
      const headers = { ...response.headers() };
      delete headers['content-length'];
      await route.fulfill({ response, json, headers });
    });
    await page.locator('#refresh:not([disabled])').waitFor({ timeout: 15_000 });
    await page.locator('#refresh').click();
    const row = (id) => page.locator('#sessions tbody tr').filter({ has: page.locator(`th:text-is("${id}")`) });
    await row('spare').waitFor({ timeout: 10_000 });
    await page.unroute('**/api/v2/sessions');
    assert.deepEqual(await page.locator('#sessions thead th').allInnerTexts(),
      ['Session', 'Phone', 'Status', 'Warm-up', 'Messaging tier', 'Lease expires', 'Last heartbeat']);

    const main = row('main').locator('.tier');
    assert.equal(await main.locator('.tier-value').textContent(), 'Tier 1: 12 / 250 unique recipients (24 h)');
    assert.equal(await main.locator('.tier-next').textContent(), 'next: 1,000 — 85 more unique recipients in 7 days');
    const bar = page.getByRole('meter', { name: "Session main: unique recipients in 24 hours against its tier's cap" });
    assert.equal(await bar.getAttribute('aria-valuenow'), '4.8');
    assert.equal(await bar.getAttribute('aria-valuetext'), '12 of 250, 4.8 %');

    const sales = row('sales').locator('.tier');
    assert.equal(await sales.locator('.tier-value').textContent(),
      'Tier 2: 1,000 / 1,000 unique recipients (24 h), cap reached');
    assert.equal(await sales.locator('[role="meter"]').getAttribute('aria-valuetext'), '1,000 of 1,000, 100.0 %, cap reached');
    const utc = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
    assert.equal(await sales.locator('.tier-next').textContent(), `next: 10,000 at ${utc.format(new Date(at))} UTC`);
    assert.equal(await sales.locator('.tier-next time').getAttribute('datetime'), at);

    const support = row('support').locator('.tier');
    assert.equal(await support.textContent(), 'Tier 5: 12,345 unique recipients (24 h), unlimited');
    assert.equal(await support.locator('[role="meter"]').count(), 0);

    assert.equal(await row('spare').locator('td').nth(3).textContent(), '');
    // The axe checks below (1280 and 375 px) run on this table.
  });

  it('has no serious or critical axe violations', async () => {
    assert.deepEqual(await axeViolations(page), []);
  });

  it('fits 375 px without horizontal scrolling (and takes the screenshot)', async () => {
    // docs/dashboard.png is rewritten only on request, so a test run leaves the tree clean.
    const shot = process.env.UPDATE_SCREENSHOT ? join(docs, 'dashboard.png') : join(tmpdir(), 'quotum-dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(300);
    const { scroll, client: width } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px viewport`);
    const cardWidth = await card('messages_sent').evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(cardWidth <= 375, `a card is ${cardWidth} px wide`);
    // Here the wide tables (sessions) scroll inside their box: they must be reachable by keyboard.
    assert.deepEqual(await axeViolations(page), []);
    if (process.env.MOBILE_SHOT) await page.screenshot({ path: process.env.MOBILE_SHOT, fullPage: true });
  });

  it('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });

  it('refuses a wrong key, keeps the key to its tab, and signs out', async () => {
    const other = await context.newPage();
    await other.goto(server.base + '/');
    // Another tab has its own session storage: it is not signed in.
    await other.locator('#api-key').waitFor();
    assert.ok(await other.locator('#dashboard').isHidden());
    await other.locator('#api-key').fill('qk_00000000000000000000000000000000');
    await other.getByRole('button', { name: 'Sign in' }).click();
    await other.locator('#sign-in-error').filter({ hasText: 'not accepted' }).waitFor();
    assert.ok(await other.locator('#dashboard').isHidden());
    await other.close();

    await page.locator('#sign-out').click();
    await page.locator('#api-key').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('quotum.api_key')), null);
    assert.equal(await page.locator('#meter-cards .card').count(), 0);
  });
});
