// Starts a real `quotum serve` for the browser tests: port 0, a temporary data
// dir, the example config, an admin key from the environment. The caller must
// call stop(), which is also done on process exit as a fallback.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ADMIN_KEY = 'qa_web_tests_admin_key_0123456789';

export function binaryPath() {
  const bin = process.env.QUOTUM_BINARY ?? join(root, 'build/dev/apps/quotum/quotum');
  if (!existsSync(bin)) {
    throw new Error(`no quotum binary at ${bin}: build it (cmake --build --preset dev --target quotum) or set QUOTUM_BINARY`);
  }
  return bin;
}

export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'quotum-web-'));
  const child = spawn(
    binaryPath(),
    ['serve', '--config', join(root, 'examples/quotum.toml'), '--data-dir', join(dir, 'data'),
      '--listen', '127.0.0.1:0'],
    { env: { ...process.env, QUOTUM_ADMIN_KEY: ADMIN_KEY }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const onExit = () => child.kill('SIGKILL');
  process.on('exit', onExit);
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no 'listening on' within 20 s:\n${output}`)), 20_000);
    const read = (chunk) => {
      output += chunk;
      const m = /listening on (\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        ok(`http://${m[1]}`);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', (c) => (output += c));
    child.on('exit', (code) => fail(new Error(`quotum exited with ${code}:\n${output}`)));
  });
  return {
    base,
    log: () => output,
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null) {
        const exited = new Promise((ok) => child.once('exit', ok));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
      return child.exitCode;
    },
  };
}

/// A small JSON client for the API (admin key, tenant key, or `call` with any headers).
export function client(base) {
  async function call(method, path, body, headers) {
    const res = await fetch(base + path, {
      method,
      headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, json, text, headers: res.headers };
  }
  return {
    call,
    admin: (method, path, body) => call(method, path, body, { 'X-API-Key': ADMIN_KEY }),
    tenant: (key, method, path, body) => call(method, path, body, { Authorization: `Bearer ${key}` }),
  };
}

const DIST = join(root, 'web/dist');

/**
 * Checks that the server at `base` serves the committed build: the binary embeds
 * web/dist when it is compiled, so a binary built before the last change to web/dist
 * serves an older page, and the browser tests would test that instead. Throws then.
 */
export async function expectEmbeddedDashboard(base) {
  const served = await (await fetch(base + '/')).text();
  const built = readFileSync(join(DIST, 'index.html'), 'utf8');
  if (served === built) return;
  throw new Error(
    'the quotum binary serves another dashboard than web/dist/index.html: ' +
      'rebuild it (cmake --build --preset dev) after changing web/dist',
  );
}

const axeSource = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** Debian's chromium, headless, as every browser test runs it (CHROMIUM overrides the path). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** axe-core's serious and critical violations on `page` as it is. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}
