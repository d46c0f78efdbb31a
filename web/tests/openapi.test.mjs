// Live responses of a real `quotum serve` against docs/openapi.yaml: every answer
// below, success or error, must have a status the description lists for its route,
// one of its media types, and a JSON body that validates against its schema
// (openapi.mjs, ajv draft 2020-12). Run: `npm test` in web/ (scripts/test-web.sh).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { DESCRIPTION_PATH, loadDescription, responseChecker } from './openapi.mjs';
import { ADMIN_KEY, client, startServer } from './server.mjs';

const check = responseChecker(loadDescription());
const NO_KEY = 'qk_00000000000000000000000000000000';

let server, api, key, other;

/**
 * Sends `body` to `path` with `who`'s key ('admin', a tenant key, or null for none) and
 * the `headers`; the answer must have the status `expect` and match the description of
 * the operation at `template`.
 */
async function as(who, method, path, template, expect, body, headers = {}) {
  const auth = who === 'admin' ? { 'X-API-Key': ADMIN_KEY } : who ? { Authorization: `Bearer ${who}` } : {};
  const res = await api.call(method, path, body, { ...auth, ...headers });
  assert.equal(res.status, expect, `${method} ${path}: ${res.text}`);
  check(method, template, res);
  return res;
}
const tenant = (method, path, template, expect, body, extra) =>
  as(key, method, path, template, expect, body, extra);
const admin = (method, path, template, expect, body) => as('admin', method, path, template, expect, body);

describe('live responses match docs/openapi.yaml', () => {
  before(async () => {
    server = await startServer();
    api = client(server.base);
    const created = await api.admin('POST', '/admin/tenants', { id: 'oa', name: 'OpenAPI Ltd', plan: 'business' });
    assert.equal(created.status, 201, created.text);
    key = created.json.api_key;
    const full = await api.admin('POST', '/admin/tenants', { id: 'oa-full', plan: 'starter' });
    assert.equal(full.status, 201, full.text);
    other = full.json.api_key;
  });
  after(async () => {
    assert.equal(await server.stop(), 0, server.log());
  });

  it('serves itself, byte for byte, as application/yaml', async () => {
    const res = await api.call('GET', '/openapi.yaml');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/yaml');
    assert.equal(res.text, readFileSync(DESCRIPTION_PATH, 'utf8'), 'the binary embeds a stale docs/openapi.yaml');
    assert.equal(parse(res.text).openapi, '3.1.0');
    check('GET', '/openapi.yaml', res);
  });

  it('operations: healthz, readyz, metrics, the dashboard', async () => {
    await as(null, 'GET', '/healthz', '/healthz', 200);
    await as(null, 'GET', '/readyz', '/readyz', 200);
    await as(null, 'GET', '/metrics', '/metrics', 200);
    await as(null, 'GET', '/', '/', 200);
    await as(null, 'GET', '/assets/app-00000000.js', '/assets/{file}', 404);
  });

  it('admin: tenants, keys, limits, rate limits', async () => {
    await admin('POST', '/admin/tenants', '/admin/tenants', 201, { id: 'oa-2', subscription_start: '2026-01-01T00:00:00Z' });
    await admin('POST', '/admin/tenants', '/admin/tenants', 409, { id: 'oa-2' });
    await admin('POST', '/admin/tenants', '/admin/tenants', 400, { name: 'no id' });
    await admin('POST', '/admin/tenants', '/admin/tenants', 422, { id: 'oa-3', plan: 'platinum' });
    await as(key, 'POST', '/admin/tenants', '/admin/tenants', 403, { id: 'oa-4' });
    await as(null, 'GET', '/admin/tenants', '/admin/tenants', 401);
    await admin('GET', '/admin/tenants', '/admin/tenants', 200);
    await admin('GET', '/admin/tenants/oa', '/admin/tenants/{id}', 200);
    await admin('GET', '/admin/tenants/nobody', '/admin/tenants/{id}', 404);
    await admin('PUT', '/admin/tenants/oa-2/limits', '/admin/tenants/{id}/limits', 200, { messages_sent: 5, chatbot_sessions: null });
    await admin('PUT', '/admin/tenants/oa-2/limits', '/admin/tenants/{id}/limits', 422, { warp_drive: 5 });
    const minted = await admin('POST', '/admin/tenants/oa-2/keys', '/admin/tenants/{id}/keys', 201);
    await admin('POST', '/admin/tenants/nobody/keys', '/admin/tenants/{id}/keys', 404);
    const rl = `/admin/api-keys/${minted.json.key_id}/rate-limits`;
    await admin('GET', rl, '/admin/api-keys/{key_id}/rate-limits', 200);
    await admin('PUT', rl, '/admin/api-keys/{key_id}/rate-limits', 200, { rateLimits: { general: 400 } });
    await admin('PUT', rl, '/admin/api-keys/{key_id}/rate-limits', 422, { bursts: 4 });
    await admin('GET', '/admin/api-keys/key_nobody/rate-limits', '/admin/api-keys/{key_id}/rate-limits', 404);
    await admin('DELETE', `/admin/api-keys/${minted.json.key_id}`, '/admin/api-keys/{key_id}', 200);
    await admin('DELETE', '/admin/api-keys/key_nobody', '/admin/api-keys/{key_id}', 404);
  });

  it('metering: consume, check, events, received, chatbot', async () => {
    const consume = { meter: 'messages_sent', quantity: 2, channel: 'whatsapp' };
    const once = { 'Idempotency-Key': 'oa-1' };
    await tenant('POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 200, consume, once);
    const replay = await tenant('POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 200, consume, once);
    assert.equal(replay.json.replayed, true);
    await tenant('POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 422, { meter: 'warp_drive' });
    await tenant('POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 400, { meter: 'messages_sent', quantity: 'two' });
    await tenant('POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 403, { meter: 'api_calls' });
    await as(NO_KEY, 'POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 401, consume);
    await tenant('POST', '/api/v2/quota/check', '/api/v2/quota/check', 200, { meter: 'ai_tokens', quantity: 7 });
    await tenant('POST', '/api/v2/quota/check', '/api/v2/quota/check', 404, { meter: 'messages_sent', session: 'nope' });
    await as(other, 'POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 200, { meter: 'messages_sent', quantity: 1000 });
    const denied = await as(other, 'POST', '/api/v2/quota/consume', '/api/v2/quota/consume', 429, { meter: 'messages_sent' });
    assert.equal(denied.json.code, 'quota_exceeded');
    await tenant('POST', '/api/v2/messages/received', '/api/v2/messages/received', 200, { channel: 'telegram', quantity: 3 });
    await tenant('POST', '/api/v2/chatbot/trigger', '/api/v2/chatbot/trigger', 200, {});
    await tenant('POST', '/api/v2/chatbot/trigger', '/api/v2/chatbot/trigger', 422, { channel: 'pigeon' });
  });

  it('metering: reserve, commit, release', async () => {
    const reserve = '/api/v2/quota/reserve', commit = '/api/v2/quota/commit', release = '/api/v2/quota/release';
    const held = await tenant('POST', reserve, reserve, 200, { meter: 'ai_tokens', quantity: 500, ttl_s: 60 }, { 'Idempotency-Key': 'oa-rsv' });
    const id = held.json.reservation_id;
    assert.equal(held.json.reservation.state, 'held');
    await tenant('POST', reserve, reserve, 200, { meter: 'ai_tokens', quantity: 500, ttl_s: 60 }, { 'Idempotency-Key': 'oa-rsv' });
    await tenant('POST', reserve, reserve, 422, { meter: 'ai_tokens', quantity: 5, ttl_s: 0 });
    await tenant('POST', reserve, reserve, 422, { meter: 'messages_sent', quantity: 5 });
    await tenant('POST', reserve, reserve, 400, { meter: 'ai_tokens' });
    await tenant('POST', reserve, reserve, 429, { meter: 'ai_tokens', quantity: 1e12 });
    await tenant('POST', commit, commit, 429, { reservation_id: id, quantity: 1e12 });
    const done = await tenant('POST', commit, commit, 200, { reservation_id: id, quantity: 320 });
    assert.equal(done.json.released, 180);
    await tenant('POST', commit, commit, 404, { reservation_id: id, quantity: 1 });
    await tenant('POST', commit, commit, 400, { reservation_id: id });
    const again = await tenant('POST', reserve, reserve, 200, { meter: 'ai_tokens', quantity: 10 });
    await tenant('POST', release, release, 200, { reservation_id: again.json.reservation_id });
    await tenant('POST', release, release, 404, { reservation_id: again.json.reservation_id });
  });

  it('metering: event batches', async () => {
    // A second ahead: within the period, which began when the tenant was made, and the
    // server's 5 minutes of allowed clock skew.
    const soon = new Date(Date.now() + 1000).toISOString().slice(0, 19) + 'Z';
    const ok = { events: [{ meter: 'messages_sent', quantity: 1 }, { meter: 'leads_detected', timestamp: soon }] };
    const batch = await tenant('POST', '/api/v2/events', '/api/v2/events', 200, ok);
    assert.equal(batch.json.accepted, 2);
    const bad = { events: [{ meter: 'messages_sent' }, { meter: 'warp_drive' }, { quantity: 1 }] };
    const invalid = await tenant('POST', '/api/v2/events', '/api/v2/events', 422, bad);
    assert.equal(invalid.json.errors.length, 2);
    await tenant('POST', '/api/v2/events', '/api/v2/events', 403, { events: [{ meter: 'api_calls' }] });
    await tenant('POST', '/api/v2/events', '/api/v2/events', 400, { events: [] });
    await tenant('GET', '/api/v2/events', '/api/v2/events', 200);
  });

  it('sessions, messages, groups and subscribers', async () => {
    await tenant('POST', '/api/v2/sessions', '/api/v2/sessions', 201, { id: 'main', phone: '+15550100' });
    await tenant('POST', '/api/v2/sessions', '/api/v2/sessions', 409, { id: 'main' });
    await tenant('POST', '/api/v2/sessions', '/api/v2/sessions', 201);
    await tenant('POST', '/api/v2/messages/send', '/api/v2/messages/send', 409, { session: 'main', to: '+15550199' });
    await tenant('PATCH', '/api/v2/sessions/main', '/api/v2/sessions/{id}', 200, { status: 'working' });
    await tenant('PATCH', '/api/v2/sessions/main', '/api/v2/sessions/{id}', 422, { status: 'asleep' });
    await tenant('POST', '/api/v2/sessions/main/heartbeat', '/api/v2/sessions/{id}/heartbeat', 200);
    await tenant('GET', '/api/v2/sessions', '/api/v2/sessions', 200);
    await tenant('GET', '/api/v2/sessions/main', '/api/v2/sessions/{id}', 200);
    await tenant('GET', '/api/v2/sessions/nope', '/api/v2/sessions/{id}', 404);
    await tenant('GET', '/api/v2/sessions/main/qr', '/api/v2/sessions/{id}/qr', 200);
    const polled = await tenant('GET', '/api/v2/sessions/main/qr', '/api/v2/sessions/{id}/qr', 429);
    assert.equal(polled.json.code, 'rate_limited');
    const sent = await tenant('POST', '/api/v2/messages/send', '/api/v2/messages/send', 200, { session: 'main', to: '+15550199', text: 'Hi' });
    await tenant('GET', `/api/v2/messages/${sent.json.message_id}`, '/api/v2/messages/{id}', 200);
    await tenant('GET', '/api/v2/messages/msg_nope', '/api/v2/messages/{id}', 404);
    await tenant('POST', '/api/v2/messages/send', '/api/v2/messages/send', 400, { session: 'main' });
    await tenant('DELETE', '/api/v2/sessions/main', '/api/v2/sessions/{id}', 200);
    await tenant('POST', '/api/v2/groups', '/api/v2/groups', 201, { id: 'team', name: 'Team' });
    await tenant('POST', '/api/v2/groups', '/api/v2/groups', 409, { id: 'team' });
    await tenant('GET', '/api/v2/groups', '/api/v2/groups', 200);
    await tenant('DELETE', '/api/v2/groups/team', '/api/v2/groups/{id}', 200);
    await tenant('DELETE', '/api/v2/groups/team', '/api/v2/groups/{id}', 404);
    await tenant('PUT', '/api/v2/subscribers/count', '/api/v2/subscribers/count', 200, { count: 120 });
    await tenant('PUT', '/api/v2/subscribers/count', '/api/v2/subscribers/count', 400, {});
  });

  it('messages: schedule, read, list, cancel', async () => {
    const M = '/api/v2/messages';
    // Scheduling needs a session of the tenant, in any status; this one never works, and
    // the sends are an hour ahead, so both stay queued.
    await tenant('POST', '/api/v2/sessions', '/api/v2/sessions', 201, { id: 'later' });
    const at = new Date(Date.now() + 3600_000).toISOString().slice(0, 19) + 'Z';
    const schedule = { session: 'later', to: '+15550199', text: 'Later', send_at: at };
    const first = await tenant('POST', `${M}/schedule`, `${M}/schedule`, 202, schedule);
    assert.equal(first.json.status, 'queued');
    assert.equal(first.json.reason, 'scheduled');
    assert.equal(first.json.send_at, at);
    const second = await tenant('POST', `${M}/schedule`, `${M}/schedule`, 202, { ...schedule, type: 'media' });
    const read = await tenant('GET', `${M}/${first.json.id}`, `${M}/{id}`, 200);
    assert.equal(read.json.session, 'later');
    const unparsable = await tenant('POST', `${M}/schedule`, `${M}/schedule`, 400, { ...schedule, send_at: 'tomorrow' });
    assert.equal(unparsable.json.code, 'invalid_send_at');
    const past = await tenant('POST', `${M}/schedule`, `${M}/schedule`, 422, { ...schedule, send_at: '2020-01-01T00:00:00Z' });
    assert.equal(past.json.code, 'invalid_send_at');
    const missing = await tenant('POST', `${M}/schedule`, `${M}/schedule`, 400, { session: 'later', to: '+15550199' });
    assert.equal(missing.json.code, 'missing_field');
    await tenant('POST', `${M}/schedule`, `${M}/schedule`, 404, { ...schedule, session: 'nope' });
    const type = await tenant('POST', `${M}/schedule`, `${M}/schedule`, 422, { ...schedule, type: 'poster' });
    assert.equal(type.json.code, 'unknown_message_type');

    const page = await tenant('GET', `${M}?limit=1`, M, 200);
    assert.equal(page.json.messages.length, 1);
    assert.equal(typeof page.json.next_cursor, 'string');
    await tenant('GET', `${M}?limit=1&cursor=${encodeURIComponent(page.json.next_cursor)}`, M, 200);
    const queued = await tenant('GET', `${M}?status=queued`, M, 200);
    assert.deepEqual(queued.json.messages.map((m) => m.id).sort(), [first.json.id, second.json.id].sort());
    assert.equal(queued.json.next_cursor, null);
    await tenant('GET', `${M}?status=lost`, M, 422);
    await tenant('GET', `${M}?limit=501`, M, 422);
    await tenant('GET', `${M}?cursor=zzz`, M, 400);

    const cancelled = await tenant('DELETE', `${M}/${first.json.id}`, `${M}/{id}`, 200);
    assert.equal(cancelled.json.status, 'cancelled');
    assert.equal(cancelled.json.reason, 'cancelled');
    const again = await tenant('DELETE', `${M}/${first.json.id}`, `${M}/{id}`, 409);
    assert.equal(again.json.code, 'message_not_queued');
    await tenant('DELETE', `${M}/msg_nope`, `${M}/{id}`, 404);
    await as(other, 'DELETE', `${M}/${second.json.id}`, `${M}/{id}`, 404);
    await as(other, 'GET', `${M}/${second.json.id}`, `${M}/{id}`, 404);
    await tenant('DELETE', `${M}/${second.json.id}`, `${M}/{id}`, 200);
    await tenant('DELETE', '/api/v2/sessions/later', '/api/v2/sessions/{id}', 200);
  });

  it('messages: bulk sends', async () => {
    const B = '/api/v2/messages/bulk', M = '/api/v2/messages';
    await tenant('POST', '/api/v2/sessions', '/api/v2/sessions', 201, { id: 'bulk', phone: '+15550110' });
    await tenant('PATCH', '/api/v2/sessions/bulk', '/api/v2/sessions/{id}', 200, { status: 'working' });
    // Immediate mode, one invalid recipient: the two valid ones are admitted (charged, released).
    const body = { session: 'bulk', text: 'Sale', recipients: ['+15550100', '12', '+15550101'] };
    const once = { 'Idempotency-Key': 'oa-bulk' };
    const sent = await tenant('POST', B, B, 202, body, once);
    assert.equal(sent.json.allowed, true);
    assert.equal(sent.json.requested, 2);
    assert.equal(sent.json.accepted, 2);
    assert.equal(sent.json.queued, 0);
    assert.equal(sent.json.rejected, 1);
    assert.deepEqual(sent.json.messages.map((m) => [m.index, m.to, m.status]),
      [[0, '+15550100', 'released'], [2, '+15550101', 'released']]);
    assert.deepEqual(sent.json.rejections.map((r) => [r.index, r.to, r.code]), [[1, '12', 'invalid_recipient']]);
    const read = await tenant('GET', `${M}/${sent.json.messages[0].id}`, `${M}/{id}`, 200);
    assert.equal(read.json.session, 'bulk');
    assert.ok(['released', 'sent'].includes(read.json.status), read.text);
    // A retry answers the first decision, naming the same messages.
    const again = await tenant('POST', B, B, 202, body, once);
    assert.equal(again.json.replayed, true);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(again.json.messages.map((m) => m.id), sent.json.messages.map((m) => m.id));

    const many = Array.from({ length: 10001 }, (_, i) => `+1555${1000000 + i}`);
    const cases = [
      [413, 'too_many_recipients', { ...body, recipients: many }],
      [422, 'no_recipients', { ...body, recipients: [] }],
      [422, 'invalid_recipients', { ...body, recipients: ['abc', 7] }],
      [422, 'invalid_mode', { ...body, mode: 'later' }],
      [422, 'unknown_message_type', { ...body, type: 'poster' }],
      [400, 'missing_field', { session: 'bulk', text: 'Sale' }],
      [400, 'invalid_field', { ...body, recipients: '+15550100' }],
      [404, 'session_not_found', { ...body, session: 'nope' }],
    ];
    for (const [status, code, bad] of cases) {
      const res = await tenant('POST', B, B, status, bad);
      assert.equal(res.json.code, code, res.text);
    }
    await tenant('POST', '/api/v2/sessions', '/api/v2/sessions', 201, { id: 'idle' });
    const idle = await tenant('POST', B, B, 409, { ...body, session: 'idle' });
    assert.equal(idle.json.code, 'session_not_working');

    // The tenant whose messages are used up (see metering): immediate admits nothing (429,
    // the bulk's own body); queue mode queues the whole bulk (202).
    await as(other, 'POST', '/api/v2/sessions', '/api/v2/sessions', 201, { id: 'full', phone: '+15550120' });
    await as(other, 'PATCH', '/api/v2/sessions/full', '/api/v2/sessions/{id}', 200, { status: 'working' });
    const full = { ...body, session: 'full' };
    const none = await as(other, 'POST', B, B, 429, full);
    assert.equal(none.json.accepted, 0);
    assert.deepEqual(none.json.rejections.map((r) => r.code), ['invalid_recipient', 'limit_reached', 'limit_reached']);
    const held = await as(other, 'POST', B, B, 202, { ...full, mode: 'queue' });
    assert.equal(held.json.accepted, 0);
    assert.equal(held.json.queued, 2);
    assert.deepEqual(held.json.messages.map((m) => m.status), ['queued', 'queued']);
    const queued = await as(other, 'GET', `${M}/${held.json.messages[0].id}`, `${M}/{id}`, 200);
    assert.equal(queued.json.reason, 'limit_reached');
    for (const m of held.json.messages) await as(other, 'DELETE', `${M}/${m.id}`, `${M}/{id}`, 200);
    await as(other, 'DELETE', '/api/v2/sessions/full', '/api/v2/sessions/{id}', 200);
    await tenant('DELETE', '/api/v2/sessions/idle', '/api/v2/sessions/{id}', 200);
    await tenant('DELETE', '/api/v2/sessions/bulk', '/api/v2/sessions/{id}', 200);
  });

  it('usage: current, daily, hourly, history, channels, export, plans', async () => {
    await tenant('GET', '/api/v2/usage/current', '/api/v2/usage/current', 200);
    await as(null, 'GET', '/api/v2/usage/current', '/api/v2/usage/current', 401);
    await tenant('GET', '/api/v2/usage/daily', '/api/v2/usage/daily', 200);
    await tenant('GET', '/api/v2/usage/daily?range=7d', '/api/v2/usage/daily', 200);
    await tenant('GET', '/api/v2/usage/daily?days=0', '/api/v2/usage/daily', 400);
    await tenant('GET', '/api/v2/usage/daily?from=2026-02-01&to=2026-01-01', '/api/v2/usage/daily', 400);
    await tenant('GET', '/api/v2/usage/hourly', '/api/v2/usage/hourly', 200);
    await tenant('GET', '/api/v2/usage/hourly?date=yesterday', '/api/v2/usage/hourly', 400);
    await tenant('GET', '/api/v2/usage/history?months=2', '/api/v2/usage/history', 200);
    await tenant('GET', '/api/v2/usage/history?months=25', '/api/v2/usage/history', 400);
    await tenant('GET', '/api/v2/usage/channels?range=period', '/api/v2/usage/channels', 200);
    await tenant('GET', '/api/v2/usage/channels?meter=sessions_active', '/api/v2/usage/channels', 422);
    await tenant('GET', '/api/v2/usage/export?format=csv&range=7d', '/api/v2/usage/export', 200);
    await tenant('GET', '/api/v2/usage/export?format=xls', '/api/v2/usage/export', 400);
    await tenant('GET', '/api/v2/plans', '/api/v2/plans', 200);
  });

  it('subscription: preview, change, pending, cancel, the ledger, an admin move', async () => {
    const S = '/api/v2/subscription';
    await tenant('GET', S, S, 200);
    const preview = await tenant('POST', `${S}/preview`, `${S}/preview`, 200, { plan: 'pro' });
    assert.equal(preview.json.kind, 'downgrade');
    await tenant('POST', `${S}/preview`, `${S}/preview`, 403, { plan: 'enterprise' });
    await tenant('POST', `${S}/preview`, `${S}/preview`, 422, { plan: 'warp' });
    await tenant('POST', `${S}/change`, `${S}/change`, 400, {});
    const pending = await tenant('POST', `${S}/change`, `${S}/change`, 200, { plan: 'pro' });
    assert.equal(pending.json.state, 'pending');
    const usage = await tenant('GET', '/api/v2/usage/current', '/api/v2/usage/current', 200);
    assert.equal(usage.json.pending_plan.plan, 'pro');
    const ledger = await tenant('GET', S, S, 200);
    assert.equal(ledger.json.pending_plan.plan, 'pro');
    await tenant('DELETE', `${S}/pending`, `${S}/pending`, 200);
    await tenant('DELETE', `${S}/pending`, `${S}/pending`, 404);
    await tenant('POST', `${S}/change`, `${S}/change`, 422, { plan: 'business' });
    const A = '/api/v2/addons';
    await tenant('POST', A, A, 422, { meter: 'chatbot_sessions', quantity: 7 });
    const bought = await tenant('POST', A, A, 201, { meter: 'chatbot_sessions', quantity: 1000 });
    await tenant('GET', A, A, 200);
    await tenant('GET', '/api/v2/usage/current', '/api/v2/usage/current', 200);
    await tenant('DELETE', `${A}/${bought.json.id}`, `${A}/{id}`, 200);
    await tenant('DELETE', `${A}/${bought.json.id}`, `${A}/{id}`, 409);
    await tenant('DELETE', `${A}/addon_nope`, `${A}/{id}`, 404);
    await tenant('GET', S, S, 200);
    const moved = await admin('POST', '/admin/tenants/oa-full/plan', '/admin/tenants/{id}/plan', 200, { plan: 'pro' });
    assert.equal(moved.json.actor, 'admin');
    await admin('POST', '/admin/tenants/nobody/plan', '/admin/tenants/{id}/plan', 404, { plan: 'pro' });
  });

  it('subscription: top-ups', async () => {
    const T = '/api/v2/topups';
    const bought = await tenant('POST', T, T, 201, { meter: 'credits', quantity: 5000 });
    assert.match(bought.json.id, /^top_[0-9a-f]{16}$/);
    assert.equal(bought.json.balance, 5000);
    assert.equal(bought.json.price_cents, 1000);
    assert.equal(bought.json.expires_at, null);
    const lapsing = await tenant('POST', T, T, 201, { meter: 'ai_tokens', quantity: 1000000, expires_in_days: 30 });
    assert.notEqual(lapsing.json.expires_at, null);
    const size = await tenant('POST', T, T, 422, { meter: 'credits', quantity: 7 });
    assert.equal(size.json.code, 'invalid_pack_size');
    const none = await tenant('POST', T, T, 422, { meter: 'sessions_active', quantity: 1 });
    assert.equal(none.json.code, 'no_topup_packs');
    const expiry = await tenant('POST', T, T, 422, { meter: 'credits', quantity: 5000, expires_in_days: 0 });
    assert.equal(expiry.json.code, 'invalid_expiry');
    const missing = await tenant('POST', T, T, 400, { meter: 'credits' });
    assert.equal(missing.json.code, 'missing_field');
    const listed = await tenant('GET', T, T, 200);
    // Oldest expiry first; the one that never lapses last.
    assert.deepEqual(listed.json.topups.map((t) => t.id), [lapsing.json.id, bought.json.id]);
    const usage = await tenant('GET', '/api/v2/usage/current', '/api/v2/usage/current', 200);
    assert.deepEqual(usage.json.topups.map((t) => t.id), [lapsing.json.id, bought.json.id]);
    const S = '/api/v2/subscription';
    const ledger = await tenant('GET', S, S, 200);
    const lines = ledger.json.changes.filter((c) => c.kind === 'topup_added');
    assert.deepEqual(lines.map((c) => c.proration_cents).sort((a, b) => a - b), [1000, 2000]);
    await tenant('GET', '/api/v2/plans', '/api/v2/plans', 200);
  });

  it('rules: a key over its general limit gets the 429 body and headers', async () => {
    const minted = await admin('POST', '/admin/tenants/oa/keys', '/admin/tenants/{id}/keys', 201);
    await admin('PUT', `/admin/api-keys/${minted.json.key_id}/rate-limits`, '/admin/api-keys/{key_id}/rate-limits', 200, { general: 1 });
    await as(minted.json.api_key, 'GET', '/api/v2/plans', '/api/v2/plans', 200);
    const refused = await as(minted.json.api_key, 'GET', '/api/v2/plans', '/api/v2/plans', 429);
    assert.equal(refused.json.code, 'rate_limited');
    assert.equal(refused.headers.get('x-quotum-rule'), 'general');
  });

  it('unrouted requests: 404 and 405 are Errors', async () => {
    const unrouted = [['POST', '/api/v2/nowhere', 404], ['PUT', '/api/v2/plans', 405], ['GET', '/api/v2/messages/bulk', 405]];
    for (const [method, path, status] of unrouted) {
      const res = await api.tenant(key, method, path, method === 'GET' ? undefined : {});
      assert.equal(res.status, status, res.text);
      check.schema('Error', res);
    }
  });
});
