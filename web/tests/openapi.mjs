// docs/openapi.yaml for the tests: the parsed description, the router's routes as
// `quotum routes` prints them, and a checker of live responses against the
// description's response schemas (ajv, JSON Schema draft 2020-12, which OpenAPI 3.1 uses).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { binaryPath } from './server.mjs';

export const DESCRIPTION_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../../docs/openapi.yaml');
export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export function loadDescription() {
  return parse(readFileSync(DESCRIPTION_PATH, 'utf8'));
}

/** `quotum routes`: [{method: 'get', path: '/api/v2/sessions/{id}', access: 'tenant'}]. */
export function routerRoutes() {
  const out = execFileSync(binaryPath(), ['routes'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).map((line) => {
    const [method, path, access, ...rest] = line.split(' ');
    assert.equal(rest.length, 0, `unexpected line from quotum routes: ${line}`);
    return { method: method.toLowerCase(), path, access };
  });
}

/** Every operation of the description: [{method, path, op}]. */
export function describedOperations(doc) {
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (item[method]) ops.push({ method, path, op: item[method] });
    }
  }
  return ops;
}

// Follows a '#/components/...' reference inside the description.
function deref(doc, node) {
  if (!node?.$ref) return node;
  const parts = node.$ref.replace(/^#\//, '').split('/');
  return deref(doc, parts.reduce((at, p) => at[p.replaceAll('~1', '/').replaceAll('~0', '~')], doc));
}

/**
 * Checks live responses against the description: check(method, path, response), with
 * `path` the description's template ('/api/v2/sessions/{id}') and `response` from
 * server.mjs's client ({status, json, text, headers}). Fails the test when the
 * status is not one the operation lists (its `default` does not count), when
 * the Content-Type is not one of the status's media types, when a required header is
 * missing, or when a JSON body does not validate against the schema.
 */
export function responseChecker(doc) {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  // The components' schemas under one id, their references rewritten to it.
  const rebase = (v) =>
    JSON.parse(JSON.stringify(v).replaceAll('"#/components/schemas/', '"openapi#/$defs/'));
  ajv.addSchema({ $id: 'openapi', $defs: rebase(doc.components.schemas) });
  const compiled = new Map();
  const validatorFor = (key, schema) => {
    if (!compiled.has(key)) compiled.set(key, ajv.compile(rebase(schema)));
    return compiled.get(key);
  };

  function check(method, path, res) {
    const where = `${method.toUpperCase()} ${path} → ${res.status}`;
    const op = doc.paths[path]?.[method.toLowerCase()];
    assert.ok(op, `${method.toUpperCase()} ${path} is not in docs/openapi.yaml`);
    const status = String(res.status);
    assert.ok(op.responses[status], `${where} is not described: ${res.text}`);
    const response = deref(doc, op.responses[status]);
    for (const [name, header] of Object.entries(response.headers ?? {})) {
      if (deref(doc, header).required) assert.ok(res.headers.get(name), `${where}: no ${name} header`);
    }
    const type = res.headers.get('content-type');
    const media = Object.keys(response.content ?? {});
    assert.ok(media.includes(type) || media.includes('*/*'), `${where}: Content-Type ${type} is not one of ${media}`);
    const schema = response.content[type]?.schema;
    if (type !== 'application/json') return;
    assert.ok(schema, `${where}: no schema for application/json`);
    expectValid(where, validatorFor(`${method} ${path} ${status}`, schema), res);
  }
  function expectValid(where, validate, res) {
    if (!validate(res.json)) {
      assert.fail(`${where}: the body does not match docs/openapi.yaml:\n` +
        `${ajv.errorsText(validate.errors, { separator: '\n' })}\n${res.text}`);
    }
  }
  /** check.schema('Error', res): the JSON body validates against that component. */
  check.schema = (name, res) => {
    assert.equal(res.headers.get('content-type'), 'application/json');
    expectValid(`#/components/schemas/${name}`, ajv.getSchema(`openapi#/$defs/${name}`), res);
  };
  return check;
}
