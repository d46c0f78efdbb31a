// The dashboard's live usage stream (GET /api/v2/usage/stream, docs/dashboard.md "Live
// stream"): first the page's SSE parser and its merge of pushes and polls, compiled from
// web/src with TypeScript and run in node; then, on a real `quotum serve` in Debian's
// Chromium (same setup as dashboard.test.mjs): the indicator says Live, the stream
// carries the key in a header only, a consume shows on the card within 2 s while the
// usage/current polls are held back (so the stream delivered it), a stream that ends is
// reopened with Last-Event-ID, a tenant with its 4 streams taken falls back to polling,
// and sign-out aborts the stream. Run: `npm test` in web/ (scripts/test-web.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import {
  axeViolations, client, expectEmbeddedDashboard, launchChromium, startServer,
} from './server.mjs';

const src = join(dirname(fileURLToPath(import.meta.url)), '../src');
const LIVE_MS = 2_000;
const STREAM = '/api/v2/usage/stream';
const CURRENT = '/api/v2/usage/current';

/** A module of web/src (no runtime imports), compiled to JavaScript and imported. */
async function load(name) {
  const dir = mkdtempSync(join(tmpdir(), 'quotum-web-unit-'));
  try {
    const { outputText } = ts.transpileModule(readFileSync(join(src, `${name}.ts`), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2020 },
    });
    const file = join(dir, `${name}.mjs`);
    writeFileSync(file, outputText);
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the SSE parser (src/sse.ts)', () => {
  let SseParser;
  before(async () => ({ SseParser } = await load('sse')));

  /** Feeds `chunks` to a new parser; its events, its retry and its last id. */
  function parse(chunks, lastId = '') {
    const events = [];
    const p = new SseParser((e) => events.push(e), lastId);
    for (const c of chunks) p.feed(c);
    return { events, retry: p.retryMs, lastId: p.lastEventId };
  }

  it('reads the server\'s stream: retry, an event with its id and type, a heartbeat', () => {
    const body =
      'retry: 2000\n\n' +
      'id: 00000000000000aa\nevent: usage\ndata: {"full":true,"meters":{}}\n\n' +
      ': heartbeat\n\n' +
      'id: 00000000000000ab\nevent: usage\ndata: {"full":false}\n\n';
    const { events, retry, lastId } = parse([body]);
    assert.equal(retry, 2000);
    assert.deepEqual(events, [
      { type: 'usage', data: '{"full":true,"meters":{}}', id: '00000000000000aa' },
      { type: 'usage', data: '{"full":false}', id: '00000000000000ab' },
    ]);
    assert.equal(lastId, '00000000000000ab');
  });

  it('gives the same events whatever the chunks, CRLF and CR line ends and a BOM included', () => {
    const body = '\uFEFFretry: 500\r\n\r\nid: 1\r\nevent: usage\r\ndata: a\r\ndata: b\r\n\r\nid: 2\rdata:c\r\r';
    const want = [
      { type: 'usage', data: 'a\nb', id: '1' },
      { type: 'message', data: 'c', id: '2' },
    ];
    assert.deepEqual(parse([body]).events, want);
    // Every split, a CR/LF pair split between two chunks among them.
    for (let i = 1; i < body.length; i++) {
      const got = parse([body.slice(0, i), body.slice(i)]);
      assert.deepEqual(got.events, want, `split at ${i}`);
      assert.equal(got.retry, 500);
    }
    assert.deepEqual(parse([...body]).events, want, 'one character at a time');
  });

  it('keeps the last id across events and reconnections; ignores comments, unknown fields, bad retry', () => {
    const { events, retry, lastId } = parse(
      [': comment\nfoo: bar\nretry: soon\ndata: x\n\nid\ndata: y\n\ndata: unfinished'],
      'before',
    );
    assert.equal(retry, null);
    assert.deepEqual(events, [
      { type: 'message', data: 'x', id: 'before' },
      { type: 'message', data: 'y', id: '' },
    ]);
    assert.equal(lastId, '', 'an empty id field resets it');
    // A block with an id and no data dispatches nothing but moves the id on.
    const idOnly = parse(['id: 7\n\n'], 'before');
    assert.deepEqual(idOnly.events, []);
    assert.equal(idOnly.lastId, '7');
  });
});

describe('pushes and polls merged (src/usage-state.ts)', () => {
  let UsageState;
  before(async () => ({ UsageState } = await load('usage-state')));

  const meter = (used) => ({ kind: 'counter', used, limit: 100, remaining: 100 - used, percentage: used, band: 'green', enforced: true, on_limit: 'reject' });
  const poll = (sent, received = 0) => ({
    tenant_id: 't1', plan: 'pro', period: '2026-11', period_start: 'a', period_end: 'b', source: 'live',
    meters: { messages_sent: meter(sent), messages_received: meter(received) }, forecast: { f: sent },
  });
  const push = (meters, extra = {}) => ({ tenant_id: 't1', plan: 'pro', period: '2026-11', period_start: 'a', period_end: 'b', source: 'live', full: false, meters, ...extra });

  it('a push changes only its meters; a poll sent before it cannot draw an older value over it', () => {
    let now = 0;
    const s = new UsageState(() => now);
    s.fromPoll(poll(1, 1), 0);
    now = 10;
    const pushed = s.fromStream(push({ messages_sent: meter(5) }));
    assert.equal(pushed.reshaped, false);
    let u = pushed.usage;
    assert.equal(u.meters.messages_sent.used, 5);
    assert.equal(u.meters.messages_received.used, 1, 'a meter the push did not name is kept');
    assert.deepEqual(u.forecast, { f: 1 }, 'the fields a push lacks are the last poll\'s');
    // A poll sent at 5 (before the push arrived at 10) answered with the older value.
    u = s.fromPoll(poll(1, 2), 5);
    assert.equal(u.meters.messages_sent.used, 5);
    assert.equal(u.meters.messages_received.used, 2);
    // A poll sent after the push is newer: it wins.
    u = s.fromPoll(poll(7, 2), 11);
    assert.equal(u.meters.messages_sent.used, 7);
  });

  it('takes nothing before the first poll, nor another tenant\'s push; says when a push reshapes', () => {
    const s = new UsageState(() => 0);
    assert.equal(s.fromStream(push({ messages_sent: meter(5) })), null);
    s.fromPoll(poll(1), 0);
    assert.equal(s.fromStream(push({ messages_sent: meter(5) }, { tenant_id: 't2' })), null);
    const upgraded = s.fromStream(push({}, { plan: 'business', full: true }));
    assert.equal(upgraded.usage.plan, 'business');
    assert.equal(upgraded.reshaped, true, 'another plan');
    const grown = s.fromStream(push({ messages_sent: { ...meter(1), limit: 200 } }));
    assert.equal(grown.reshaped, true, 'another limit');
    assert.equal(grown.usage.meters.messages_sent.limit, 200);
    assert.equal(s.fromStream(push({ messages_sent: { ...meter(2), limit: 200 } })).reshaped, false, 'only used');
  });
});

let server, api, browser, context, page, key;
const consoleErrors = [];
const requests = [];
const responses = [];

async function consume(quantity) {
  const r = await api.tenant(key, 'POST', '/api/v2/quota/consume', { meter: 'messages_sent', quantity, channel: 'whatsapp' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.allowed, true, r.text);
}

const card = (p, meter = 'messages_sent') => p.locator(`#meter-cards [data-meter="${meter}"]`);
const cardValue = async (p) => (await card(p).locator('.value').textContent()).trim();
const streamRequests = () => requests.filter((r) => r.url.endsWith(STREAM));


/** A page of its own that records its console errors, requests and responses. */
async function newPage(errors = consoleErrors) {
  const p = await context.newPage();
  p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  p.on('pageerror', (e) => errors.push(String(e)));
  p.on('request', (r) => requests.push({ url: r.url(), at: Date.now(), headers: r.headers(), method: r.method(), page: p }));
  p.on('response', (r) => responses.push({ url: r.url(), at: Date.now(), status: r.status(), headers: r.headers(), page: p }));
  return p;
}

/** Waits until `check()` holds, asking every `every` ms. */
async function until(check, timeout, message, every = 100) {
  const end = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(message);
    await new Promise((ok) => setTimeout(ok, every));
  }
}

async function signIn(p) {
  await p.goto(server.base + '/');
  await p.locator('#api-key').fill(key);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await card(p).waitFor();
}

/** Opens a stream from node with the key (as another tab would); returns its status and a closer. */
async function nodeStream() {
  const ctrl = new AbortController();
  const res = await fetch(server.base + STREAM, { headers: { 'X-API-Key': key }, signal: ctrl.signal });
  const status = res.status;
  const body = status === 200 ? null : await res.json().catch(() => null);
  if (status === 200) res.body.getReader().read().catch(() => {}); // keep it open, unread
  return { status, body, close: () => ctrl.abort() };
}

describe('the live stream in the browser', () => {
  before(async () => {
    server = await startServer();
    api = client(server.base);
    const t = await api.admin('POST', '/admin/tenants', {
      id: 'weblive', name: 'Live Test Ltd', plan: 'pro', subscription_start: new Date().toISOString(),
    });
    assert.equal(t.status, 201, t.text);
    key = t.json.api_key;
    // Up to three tabs of this key poll at once here, and node opens streams with it: more
    // than Pro's 100 requests a minute. A custom general limit keeps the rate limiter out
    // of what this test is about (the poll stays at 1.5 s, its fastest).
    const limits = await api.admin('PUT', `/admin/api-keys/${t.json.key_id}/rate-limits`, { general: 300 });
    assert.equal(limits.status, 200, limits.text);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await expectEmbeddedDashboard(server.base);
    page = await newPage();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (server) {
      const code = await server.stop();
      assert.equal(code, 0, `quotum did not exit cleanly:\n${server.log()}`);
    }
  });

  it('goes Live, with the key in a header of the stream request only', async () => {
    await signIn(page);
    const live = page.locator('#live');
    await live.and(page.locator('[data-state="live"]')).waitFor({ timeout: 5_000 });
    assert.equal(await live.locator('.live-word').textContent(), 'Live');
    assert.equal(await live.getAttribute('role'), 'status');
    const [opened] = streamRequests();
    assert.ok(opened, 'no stream request');
    assert.equal(opened.method, 'GET');
    assert.ok(!opened.url.includes(key), `the key is in ${opened.url}`);
    assert.equal(new URL(opened.url).search, '', 'the stream URL has a query');
    assert.equal(opened.headers.authorization, `Bearer ${key}`);
    assert.equal(opened.headers['last-event-id'], undefined, 'a first connection has no Last-Event-ID');
    const answer = responses.find((r) => r.url.endsWith(STREAM));
    assert.equal(answer.status, 200);
    assert.match(answer.headers['content-type'], /^text\/event-stream/);
    assert.equal(answer.headers['cache-control'], 'no-store');
    for (const r of requests) assert.ok(!r.url.includes(key), `key in ${r.url}`);
  });

  it('shows a consume within 2 s from the stream, with usage/current held back', async () => {
    assert.equal(await cardValue(page), '0 / 10,000');
    // From here every poll of usage/current waits: only the stream can bring the change.
    const held = [];
    await page.route(`**${CURRENT}`, (route) => void held.push(route));
    // The poll in flight when the route was set (if any) lands within its interval.
    await page.waitForTimeout(1_600);
    const since = Date.now();
    await consume(7100);
    const started = Date.now();
    await card(page).and(page.locator('[data-band="yellow"]')).waitFor({ timeout: 5_000 });
    const took = Date.now() - started;
    assert.equal(await cardValue(page), '7,100 / 10,000');
    assert.match(await card(page).locator('.badge').textContent(), /Warning/);
    const polled = responses.filter((r) => r.page === page && r.url.endsWith(CURRENT) && r.at >= since);
    assert.deepEqual(polled, [], 'a usage/current answer landed after the consume');
    assert.ok(held.length >= 1, 'the poller did not try to read usage/current meanwhile');
    assert.ok(took <= LIVE_MS, `the card changed after ${took} ms`);
    console.log(`# live stream: the card changed ${took} ms after the consume (polls held: ${held.length})`);
    await page.unroute(`**${CURRENT}`);
    for (const r of held) await r.continue().catch(() => {});
    // The polls carry on and agree.
    await page.waitForResponse((r) => r.url().endsWith(CURRENT), { timeout: 5_000 });
    assert.equal(await cardValue(page), '7,100 / 10,000');
    assert.equal(streamRequests().length, 1, 'the stream was reopened');
  });

  it('has no serious or critical axe violations with the indicator', async () => {
    assert.deepEqual(await axeViolations(page), []);
  });

  it('reopens a stream that ended, after its retry delay, with Last-Event-ID', async () => {
    const other = await newPage();
    const now = await api.tenant(key, 'GET', CURRENT);
    const meters = { ...now.json.meters, messages_sent: { ...now.json.meters.messages_sent, used: 4242, remaining: 5758, percentage: 42.4, band: 'green' } };
    const event = { tenant_id: 'weblive', plan: 'pro', period: now.json.period, period_start: now.json.period_start, period_end: now.json.period_end, source: 'live', full: true, meters };
    // The first stream is answered here: one event, then the end (as a server restart ends it).
    let served = 0;
    await other.route(`**${STREAM}`, async (route) => {
      served += 1;
      if (served > 1) return route.continue();
      await route.fulfill({
        status: 200,
        headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' },
        body: `retry: 300\n\nid: 00000000000000aa\nevent: usage\ndata: ${JSON.stringify(event)}\n\n: heartbeat\n\n`,
      });
    });
    const before = streamRequests().length;
    const mine = () => streamRequests().slice(before).filter((r) => r.page === other);
    await signIn(other);
    // The pushed event is drawn (the first poll comes one interval after the sign-in).
    await card(other).filter({ hasText: '4,242 / 10,000' }).waitFor({ timeout: 1_400 });
    // Reopened (300 ms, doubled: it was short-lived) with the event's id, on the real server.
    await until(() => mine().length >= 2, 5_000, 'no second stream request');
    await other.locator('#live[data-state="live"]').waitFor({ timeout: 5_000 });
    await other.unroute(`**${STREAM}`);
    assert.equal(mine().length, 2, JSON.stringify(mine().map((r) => r.headers)));
    assert.equal(mine()[1].headers['last-event-id'], '00000000000000aa');
    assert.equal(mine()[1].headers.authorization, `Bearer ${key}`);
    // The real stream (and the polls) bring the real count back.
    await card(other).filter({ hasText: '7,100 / 10,000' }).waitFor({ timeout: 5_000 });
    await other.locator('#sign-out').click();
    await other.close();
  });

  it('falls back to polling when the tenant\'s 4 streams are taken (429 too_many_streams)', async () => {
    // The first page holds one stream; three from node make four. (The closed page's
    // stream leaves the server's count when the server sees its client gone.)
    const taken = [];
    await until(async () => {
      const s = await nodeStream();
      if (s.status === 200) taken.push(s);
      else s.close();
      return taken.length === 3;
    }, 5_000, 'three more streams were not let open', 500);
    try {
      const fifth = await nodeStream();
      assert.equal(fifth.status, 429);
      assert.equal(fifth.body?.code, 'too_many_streams', JSON.stringify(fifth.body));
      const errors = [];
      const busy = await newPage(errors);
      await signIn(busy);
      await busy.locator('#live[data-state="polling"]').waitFor({ timeout: 5_000 });
      assert.equal(await busy.locator('#live .live-word').textContent(), 'Polling');
      assert.match(await busy.locator('#live .live-why').textContent(), /Other tabs hold all of this tenant’s live streams/);
      // The polls still bring a consume within 2 s (Pro: one every 1.5 s).
      await consume(100);
      const started = Date.now();
      await card(busy).filter({ hasText: '7,200 / 10,000' }).waitFor({ timeout: 5_000 });
      const took = Date.now() - started;
      assert.ok(took <= LIVE_MS, `polling showed the consume after ${took} ms`);
      // The browser logs the 429 itself ("Failed to load resource"); the page adds nothing.
      assert.deepEqual(errors.filter((m) => !/^Failed to load resource: the server responded with a status of 429/.test(m)), []);
      await busy.locator('#sign-out').click();
      await busy.close();
    } finally {
      for (const s of taken) s.close();
    }
  });

  it('aborts the stream on sign-out, and opens none after it', async () => {
    const aborted = new Promise((ok) => page.on('requestfailed', (r) => r.url().endsWith(STREAM) && ok(r.failure()?.errorText)));
    await page.locator('#sign-out').click();
    await page.locator('#api-key').waitFor();
    assert.match(await aborted, /ABORTED/);
    assert.ok(await page.locator('#live').isHidden());
    const count = streamRequests().filter((r) => r.page === page).length;
    await page.waitForTimeout(2_500);
    assert.equal(streamRequests().filter((r) => r.page === page).length, count);
    const after = requests.filter((r) => r.page === page && r.url.includes('/api/') && r.at > Date.now() - 2_000);
    assert.deepEqual(after.map((r) => r.url), [], 'the page read on after signing out');
  });

  it('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
