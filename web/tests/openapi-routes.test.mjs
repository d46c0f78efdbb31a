// docs/openapi.yaml describes exactly the router's routes: every `quotum routes` line
// (method + path pattern) is an operation of the description and every operation is a
// route, with the security the route's access needs. Run: `npm test` in web/.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describedOperations, loadDescription, routerRoutes } from './openapi.mjs';

const doc = loadDescription();
const routes = routerRoutes();
const ops = describedOperations(doc);
const key = (r) => `${r.method.toUpperCase()} ${r.path}`;

// The security requirement names each access level needs (a missing `security` means
// the document's default, which is the tenant's).
const SCHEMES = {
  public: [],
  admin: ['adminBearer', 'adminKey'],
  tenant: ['tenantBearer', 'tenantKey'],
  tenant_decides: ['tenantBearer', 'tenantKey'],
};

function schemesOf(op) {
  const security = op.security ?? doc.security;
  return security.flatMap((requirement) => Object.keys(requirement)).sort();
}

describe('docs/openapi.yaml and the router', () => {
  it('lists routes at all', () => {
    assert.ok(routes.length > 0, 'quotum routes printed nothing');
    assert.equal(doc.openapi, '3.1.0');
  });

  it('describes every route of the router', () => {
    const described = new Set(ops.map(key));
    const missing = routes.map(key).filter((k) => !described.has(k));
    assert.deepEqual(missing, [], `routes missing from docs/openapi.yaml: ${missing.join(', ')}`);
  });

  it('describes no route the router lacks', () => {
    const routed = new Set(routes.map(key));
    const extra = ops.map(key).filter((k) => !routed.has(k));
    assert.deepEqual(extra, [], `operations with no route: ${extra.join(', ')}`);
  });

  it('asks for the key each route needs', () => {
    for (const route of routes) {
      const op = ops.find((o) => key(o) === key(route));
      if (!op) continue;  // reported above
      assert.ok(route.access in SCHEMES, `unknown access ${route.access} of ${key(route)}`);
      assert.deepEqual(schemesOf(op.op), SCHEMES[route.access], `security of ${key(route)}`);
    }
  });
});
