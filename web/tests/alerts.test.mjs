// Browser tests of the dashboard's forecast and alerts panel on a real `quotum serve`:
// a Starter tenant (1,000 messages_sent) ten days into its period, nothing used yet
// (no alerts, "stay on Starter"); then 850 consumed through the API: the 80 % alert row
// and the forecast (850, 85.0 %, Pro recommended); a webhook added through the form
// (its secret shown once), its delivery of the 90 % alert, deleted; an upgrade resolves
// the alerts. Same browser setup as plan.test.mjs. Run: `npm test` in web/ (scripts/test-web.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  axeViolations, client, expectEmbeddedDashboard, launchChromium, startServer,
} from './server.mjs';

const DAY_MS = 86_400_000;
const HOOK_URL = 'http://127.0.0.1:9/hook';
// The page's formats (src/format.ts): instants in UTC.
const utc = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
const when = (iso) => `${utc.format(new Date(iso))} UTC`;

let server, api, browser, page, key;
const consoleErrors = [];

const text = async (selector) => (await page.locator(selector).textContent()).trim();
const alertRow = (threshold) => page.locator(`#alert-list tbody tr[data-meter="messages_sent"][data-threshold="${threshold}"]`);
const webhookItems = () => page.locator('#webhook-list li[data-webhook]');

async function get(path) {
  const r = await api.tenant(key, 'GET', path);
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return r.json;
}

async function consume(quantity) {
  const r = await api.tenant(key, 'POST', '/api/v2/quota/consume', { meter: 'messages_sent', quantity, channel: 'whatsapp' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.allowed, true, r.text);
}

async function signIn() {
  await page.goto(server.base + '/');
  await page.locator('#api-key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#meter-cards [data-meter="messages_sent"]').waitFor();
}

describe('forecast and alerts panel', () => {
  before(async () => {
    server = await startServer();
    api = client(server.base);
    // Ten days into the period with nothing used before today: the forecast's pace
    // (a weighted mean of the complete days, today left out) is 0, so the projection
    // is exactly what is used.
    const start = new Date(Math.floor((Date.now() - 10 * DAY_MS) / 1000) * 1000).toISOString();
    const t = await api.admin('POST', '/admin/tenants', { id: 'webalerts', name: 'Alerts Test Ltd', plan: 'starter', subscription_start: start });
    assert.equal(t.status, 201, t.text);
    key = t.json.api_key;
    // The page signs in three times and reloads within a minute here, each time reading
    // about a dozen routes at once, and the test's own reads go with the same key: more
    // than Starter's 50 requests a minute (the trial profile). A custom general limit on
    // the key keeps the rate limiter out of what this test is about.
    const limits = await api.admin('PUT', `/admin/api-keys/${t.json.key_id}/rate-limits`, { general: 300 });
    assert.equal(limits.status, 200, limits.text);
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

  it('with nothing used: no thresholds reached, and the forecast says to stay on Starter', async () => {
    await signIn();
    await page.locator('#alert-list').filter({ hasText: 'No thresholds reached this period' }).waitFor();
    await page.locator('#forecast-plan').filter({ hasText: 'Stay on Starter' }).waitFor({ timeout: 10_000 });
    const u = await get('/api/v2/usage/current');
    assert.equal(u.forecast.method, 'no_data');
    assert.equal(u.forecast.recommended_plan, 'starter');
    assert.equal(await text('#forecast-projected'), '0 (0.0 % of 1,000)');
    assert.equal(await text('#forecast-reached'), 'Not this period');
    assert.equal(await page.locator('#forecast-method').getAttribute('data-method'), 'no_data');
    assert.equal(await text('#webhook-list'), 'No webhooks yet.');
    await page.locator('#sign-out').click();
    await page.locator('#api-key').waitFor();
    assert.equal(await page.locator('#alert-list').innerText(), '');
    assert.ok(await page.locator('#forecast-facts').isHidden());
  });

  it('after 850 of 1,000 messages: the 80 % alert row and the forecast', async () => {
    await consume(850);
    await signIn();
    await alertRow(80).waitFor({ timeout: 10_000 });
    const { alerts } = await get('/api/v2/alerts');
    assert.equal(alerts.length, 1, JSON.stringify(alerts));
    const [a] = alerts;
    assert.deepEqual([a.meter, a.threshold, a.value, a.limit, a.resolved_at], ['messages_sent', 80, 850, 1000, null]);
    assert.match(await alertRow(80).innerText(), new RegExp(`^Messages sent\\s+80 %\\s+850 / 1,000\\s+${when(a.at)}$`));
    assert.equal(await alertRow(80).getAttribute('data-resolved'), null);
    assert.equal(await page.locator('#alert-list tbody tr').count(), 1, 'only the 80 % threshold is reached');

    // The forecast of messages_sent: the pace of the complete days (none used) adds nothing.
    await page.locator('#forecast-plan').filter({ hasText: /^Pro:/ }).waitFor({ timeout: 10_000 });
    const u = await get('/api/v2/usage/current');
    assert.equal(u.forecast.projected_period_end, 850);
    assert.equal(u.forecast.method, 'ewma7');
    assert.equal(u.forecast.limit_reached_at, null);
    assert.equal(u.forecast.recommended_plan, 'pro');
    assert.equal(await text('#forecast-projected'), '850 (85.0 % of 1,000)');
    assert.equal(await text('#forecast-reached'), 'Not this period');
    assert.equal(await page.locator('#forecast-method').getAttribute('data-method'), 'ewma7');
    assert.equal(await text('#forecast-method'), 'Weighted daily pace, half-life 7 days ewma7');
    // 850 × 1.2 = 1,020 does not fit Starter's 1,000: the cheapest plan that fits is Pro.
    assert.equal(await text('#forecast-plan'), 'Pro: the cheapest plan whose limits fit the projection with 20 % to spare');
  });

  it('adds a webhook through the form: its secret is shown once, then it is listed', async () => {
    await page.locator('#webhook-url').fill(HOOK_URL);
    await page.locator('#webhook-events').selectOption('*');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v2/webhooks') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Add webhook' }).click(),
    ]);
    assert.equal(res.status(), 201);
    assert.deepEqual(JSON.parse(res.request().postData()), { url: HOOK_URL, events: ['*'] });
    const created = await res.json();
    assert.match(created.secret, /^whsec_/);
    // The secret, as the server answered it, with the note that it is shown only once.
    await page.locator('#webhook-secret').waitFor();
    assert.equal(await text('#webhook-secret-value'), created.secret);
    assert.match(await page.locator('#webhook-secret').innerText(), /shown only this once/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'webhook-secret-hide');
    // Listed with its URL and events, and no deliveries yet (the 80 % alert came before it).
    await webhookItems().first().waitFor();
    assert.equal(await webhookItems().count(), 1);
    const item = await webhookItems().first().innerText();
    assert.match(item, new RegExp(`^${HOOK_URL}\\nAll events \\(\\*\\)\\nAdded ${when(created.created_at)}`));
    assert.match(item, /No deliveries yet\./);
    assert.equal(await webhookItems().first().getAttribute('data-webhook'), created.id);
    assert.equal(await page.locator('#webhook-url').inputValue(), '');
    const { webhooks } = await get('/api/v2/webhooks');
    assert.deepEqual(webhooks.map((w) => [w.id, w.url, w.events]), [[created.id, HOOK_URL, ['*']]]);
    // The panel with the secret box passes axe.
    assert.deepEqual(await axeViolations(page), []);

    // Hidden, it is gone from the page; after a reload (signed in again from the tab's
    // session) the webhook is listed, read from the server, and the secret is nowhere.
    await page.getByRole('button', { name: 'I have copied it' }).click();
    assert.ok(await page.locator('#webhook-secret').isHidden());
    assert.ok(!(await page.content()).includes(created.secret), 'the secret stays in the page');
    await page.reload();
    await webhookItems().first().waitFor();
    assert.match(await webhookItems().first().innerText(), new RegExp(`^${HOOK_URL}\\nAll events \\(\\*\\)`));
    assert.ok(await page.locator('#webhook-secret').isHidden());
    assert.ok(!(await page.content()).includes(created.secret), 'the secret is shown again');
  });

  it('shows the webhook\'s delivery of the 90 % alert, and the alert on Refresh', async () => {
    await consume(60);
    const { events } = await get('/api/v2/events');
    const event = events.find((e) => e.type === 'usage.threshold_reached' && /reached 90%/.test(e.detail));
    assert.ok(event, JSON.stringify(events));
    // The relay tries 127.0.0.1:9 (nothing listens): the deliveries stay pending, retried.
    // (The 80 % event came before the webhook; within the same second it may be sent too.)
    let deliveries = [];
    const id = await webhookItems().first().getAttribute('data-webhook');
    for (let i = 0; i < 20 && !deliveries.some((d) => d.attempts >= 1); i++) {
      await new Promise((ok) => setTimeout(ok, 1_000));
      ({ deliveries } = await get(`/api/v2/webhooks/${id}/deliveries`));
    }
    assert.ok(deliveries.some((d) => d.event_id === event.id), JSON.stringify(deliveries));
    assert.ok(deliveries.length <= 2, JSON.stringify(deliveries));
    assert.ok(deliveries.every((d) => d.state === 'pending'), JSON.stringify(deliveries));
    assert.ok(deliveries.some((d) => d.attempts >= 1), JSON.stringify(deliveries));
    await page.getByRole('button', { name: 'Refresh deliveries' }).click();
    const line = webhookItems().first().locator('.delivery-list li');
    await line.first().waitFor();
    const n = deliveries.length;
    assert.equal(await line.count(), n);
    assert.deepEqual(await line.evaluateAll((ls) => ls.map((l) => l.dataset.state)), Array(n).fill('pending'));
    const lines = await line.allInnerTexts();
    for (const l of lines) assert.match(l, /^Pending\s+\d+ attempts?\s+\d+ \w+ \d{4}, \d\d:\d\d UTC/);
    // The one that was tried says why it failed.
    assert.ok(lines.some((l) => /attempts?\s.*last: .*127\.0\.0\.1/s.test(l) && !/^Pending\s+0 attempts/.test(l)), lines.join('\n'));
    assert.match(await webhookItems().first().innerText(),
      new RegExp(`Latest ${n} deliver${n === 1 ? 'y' : 'ies'}: 0 delivered, ${n} pending, 0 dead\\.`));
    assert.ok(await page.locator('#webhook-refresh').isDisabled(), 'Refresh deliveries is not limited');
    // The alerts are one of the panels' routes: "Refresh" reads them.
    await page.locator('#refresh').click();
    await alertRow(90).waitFor({ timeout: 10_000 });
    assert.match(await alertRow(90).innerText(), /^Messages sent\s+90 %\s+910 \/ 1,000\s+/);
    assert.equal(await page.locator('#alert-list tbody tr').count(), 2);
  });

  it('deletes the webhook after a confirmation', async () => {
    await page.getByRole('button', { name: `Delete the webhook to ${HOOK_URL}` }).click();
    // Nothing is deleted before the confirmation.
    assert.equal((await get('/api/v2/webhooks')).webhooks.length, 1);
    await page.getByRole('button', { name: `Keep the webhook to ${HOOK_URL}` }).click();
    await page.getByRole('button', { name: `Delete the webhook to ${HOOK_URL}` }).click();
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('/api/v2/webhooks/') && r.request().method() === 'DELETE'),
      page.getByRole('button', { name: `Confirm: delete the webhook to ${HOOK_URL}` }).click(),
    ]);
    assert.equal(res.status(), 200);
    await page.locator('#webhook-list').filter({ hasText: 'No webhooks yet.' }).waitFor();
    assert.equal(await text('#webhook-status'), `Deleted the webhook to ${HOOK_URL}.`);
    assert.deepEqual((await get('/api/v2/webhooks')).webhooks, []);
  });

  it('an upgrade resolves the alerts at once, and the forecast says to stay on Pro', async () => {
    const r = await api.tenant(key, 'POST', '/api/v2/subscription/change', { plan: 'pro' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.state, 'applied', r.text);
    // The next usage read shows the new limit; the panel reads the alerts then, not a minute later.
    await alertRow(80).filter({ hasText: 'Resolved' }).waitFor({ timeout: 5_000 });
    await alertRow(90).filter({ hasText: 'Resolved' }).waitFor({ timeout: 5_000 });
    const { alerts } = await get('/api/v2/alerts');
    const a80 = alerts.find((a) => a.threshold === 80);
    assert.ok(a80.resolved_at, JSON.stringify(a80));
    assert.match(await alertRow(80).innerText(),
      new RegExp(`^Messages sent\\s+80 %\\s+850 / 1,000\\s+${when(a80.at)}\\s+Resolved ${when(a80.resolved_at)}$`));
    assert.equal(await alertRow(80).getAttribute('data-resolved'), '');
    await page.locator('#forecast-plan').filter({ hasText: 'Stay on Pro' }).waitFor({ timeout: 5_000 });
    assert.equal(await text('#forecast-projected'), '910 (9.1 % of 10,000)');
  });

  it('fits 375 px without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.waitForTimeout(300);
    const { scroll, width } = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      width: document.documentElement.clientWidth,
    }));
    assert.ok(scroll <= width, `the page is ${scroll} px wide in a ${width} px viewport`);
    const panel = await page.locator('#alerts').evaluate((e) => e.getBoundingClientRect().width);
    assert.ok(panel <= 375, `the alerts panel is ${panel} px wide`);
    assert.deepEqual(await axeViolations(page), []);
    if (process.env.MOBILE_SHOT) await page.locator('#alerts').screenshot({ path: process.env.MOBILE_SHOT.replace(/(\.png)?$/, '-alerts.png') });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });

  it('shows the server\'s refusal of a webhook in the form', async () => {
    await page.locator('#webhook-url').fill('ftp://127.0.0.1/hook');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    await page.locator('#webhook-error').filter({ hasText: 'The webhook was not added: ' }).waitFor();
    assert.ok(await page.locator('#webhook-secret').isHidden());
    assert.equal(await page.locator('#webhook-url').inputValue(), 'ftp://127.0.0.1/hook');
    assert.equal(await text('#webhook-list'), 'No webhooks yet.');
    // An empty URL is refused on the page, before any request.
    await page.locator('#webhook-url').fill('');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    assert.equal(await text('#webhook-error'), 'Enter the URL to send the events to.');
    // The browser logs the 422 itself ("Failed to load resource"); the page adds nothing.
    assert.deepEqual(consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 422/.test(m)), []);
    assert.deepEqual((await get('/api/v2/webhooks')).webhooks, []);
  });
});
