import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { auditFiles, bearer, expectProblem, readAudit, startSmsStack, submit, type SmsStack } from './helpers.ts';

const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'role test' } });
const HL7 = 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|7|P|2.5\r';

type Role = 'reader' | 'writer' | 'messenger' | 'admin';
const ROLES: Role[] = ['reader', 'writer', 'messenger', 'admin'];

let world: SmsStack;
let recordId: string;
let chartUpdateId: string;

beforeAll(async () => {
  world = await startSmsStack();
  const res = await submit(world.stack, FHIR);
  recordId = res.json<{ id: string }>().id;
  await waitFor(() => world.stack.app.inbox.get(recordId), { what: 'record in inbox' });
  const chart = await world.stack.app.server.inject({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(world.stack.tokens.writer), 'content-type': 'application/hl7-v2' }, payload: HL7 });
  chartUpdateId = chart.json<{ id: string }>().id;
});
afterAll(async () => {
  await world?.stop();
});

interface AppRoute {
  role: Role;
  /** The route pattern as audited (`METHOD /pattern`). */
  resource: string;
  request: () => InjectOptions;
  ok: number;
}

// Every authenticated app route, with a request the right role gets a 2xx for. Ack is last: it removes the record.
const appRoutes = (): AppRoute[] => [
  { role: 'reader', resource: 'GET /v1/inbox', request: () => ({ method: 'GET', url: '/v1/inbox' }), ok: 200 },
  { role: 'reader', resource: 'GET /v1/inbox/:id', request: () => ({ method: 'GET', url: `/v1/inbox/${recordId}` }), ok: 200 },
  { role: 'writer', resource: 'POST /v1/chart-updates', request: () => ({ method: 'POST', url: '/v1/chart-updates', headers: { 'content-type': 'application/hl7-v2' }, payload: HL7 }), ok: 202 },
  { role: 'messenger', resource: 'POST /v1/messages', request: () => ({ method: 'POST', url: '/v1/messages', payload: { to: '+15551230001', body: 'Your appointment is confirmed' } }), ok: 202 },
  { role: 'admin', resource: 'GET /v1/admin/emergency', request: () => ({ method: 'GET', url: '/v1/admin/emergency' }), ok: 200 },
  { role: 'admin', resource: 'PUT /v1/admin/emergency', request: () => ({ method: 'PUT', url: '/v1/admin/emergency', payload: { active: false } }), ok: 200 },
  { role: 'writer', resource: 'GET /v1/chart-updates/:id', request: () => ({ method: 'GET', url: `/v1/chart-updates/${chartUpdateId}` }), ok: 200 },
  { role: 'reader', resource: 'POST /v1/inbox/:id/ack', request: () => ({ method: 'POST', url: `/v1/inbox/${recordId}/ack` }), ok: 200 },
];

function withAuth(req: InjectOptions, headers: Record<string, string>, remoteAddress: string): InjectOptions {
  return { ...req, headers: { ...(req.headers as Record<string, string> | undefined), ...headers }, remoteAddress };
}

describe('app API roles', () => {
  it('every app route: 401 without a token, 401 for an unknown token, 403 for each wrong role, 2xx for the right one; each decision audited to the file', async () => {
    const { app, tokens } = world.stack;
    const inject = (req: InjectOptions) => app.server.inject(req);
    const routes = appRoutes();
    for (const [i, route] of routes.entries()) {
      const ip = (n: number) => `198.51.100.${i * 10 + n}`;
      const missing = await inject(withAuth(route.request(), {}, ip(1)));
      expect(expectProblem(missing, 401, 'CR_AUTH_MISSING')).toBeTruthy();
      expect(missing.headers['www-authenticate']).toMatch(/^Bearer /);
      const unknown = await inject(withAuth(route.request(), bearer('not-a-real-token-0123456789'), ip(2)));
      expectProblem(unknown, 401, 'CR_AUTH_INVALID');
      expect(unknown.headers['www-authenticate']).toContain('invalid_token');
      for (const [j, other] of ROLES.filter((r) => r !== route.role).entries()) {
        const forbidden = await inject(withAuth(route.request(), bearer(tokens[other]), ip(3 + j)));
        expectProblem(forbidden, 403, 'CR_AUTH_FORBIDDEN');
      }
      const ok = await inject(withAuth(route.request(), bearer(tokens[route.role]), ip(9)));
      expect(ok.statusCode, `${route.resource}: ${ok.body}`).toBe(route.ok);
    }

    // The trail on disk, not an in-memory sink: parse the file the app wrote.
    const lines = await readAudit(auditFiles(world.stack).app);
    for (const [i, route] of routes.entries()) {
      const ip = (n: number) => `198.51.100.${i * 10 + n}`;
      const of = (action: string, n: number) => lines.find((l) => l.action === action && l.resourceId === route.resource && l.sourceIp === ip(n));
      expect(of('auth.failure', 1), `${route.resource} missing`).toMatchObject({ actor: 'anonymous', outcome: 'failure', resourceType: 'route', details: { reason: 'missing' } });
      expect(of('auth.failure', 2), `${route.resource} invalid`).toMatchObject({ actor: 'anonymous', outcome: 'failure', details: { reason: 'invalid' } });
      for (const [j, other] of ROLES.filter((r) => r !== route.role).entries()) {
        expect(of('auth.forbidden', 3 + j), `${route.resource} as ${other}`).toMatchObject({ actor: other, outcome: 'failure', details: { required: route.role } });
      }
      expect(of('auth.success', 9), `${route.resource} ok`).toMatchObject({ actor: route.role, outcome: 'success', service: 'app' });
    }
    for (const l of lines) expect(Date.parse(l.ts)).not.toBeNaN();
    // The token itself is never written.
    const raw = JSON.stringify(lines);
    for (const token of Object.values(tokens)) expect(raw).not.toContain(token);
  });

  it('the public routes need no token, and an unknown route is a 404 problem, not a 401', async () => {
    const { app } = world.stack;
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
      expect((await app.server.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
    expectProblem(await app.server.inject({ method: 'GET', url: '/v1/secret-admin' }), 404, 'CR_HTTP_NOT_FOUND');
  });
});

describe('interface API roles', () => {
  it('intake takes only partner tokens and the admin routes only admin tokens, each audited with actor and source IP', async () => {
    const { iface, tokens } = world.stack;
    const post = (headers: Record<string, string>, remoteAddress: string) =>
      iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { 'content-type': 'application/fhir+json', ...headers }, payload: FHIR, remoteAddress });
    expectProblem(await post({}, '192.0.2.11'), 401, 'CR_AUTH_MISSING');
    expectProblem(await post(bearer('nope-nope-nope'), '192.0.2.12'), 401, 'CR_AUTH_INVALID');
    // Tokens of another store are simply unknown here.
    expectProblem(await post(bearer(tokens.admin), '192.0.2.13'), 401, 'CR_AUTH_INVALID');
    const accepted = await post(bearer(tokens.partner), '192.0.2.14');
    expect(accepted.statusCode).toBe(202);
    const id = accepted.json<{ id: string }>().id;

    const admin = (headers: Record<string, string>, remoteAddress: string) => iface.server.inject({ method: 'GET', url: '/v1/admin/emergency', headers, remoteAddress });
    expectProblem(await admin(bearer(tokens.partner), '192.0.2.15'), 401, 'CR_AUTH_INVALID');
    expect((await admin(bearer(tokens.admin), '192.0.2.16')).json()).toEqual({ active: false });

    const lines = await readAudit(auditFiles(world.stack).iface);
    const at = (ip: string) => lines.filter((l) => l.sourceIp === ip);
    expect(at('192.0.2.11')[0]).toMatchObject({ action: 'auth.failure', actor: 'anonymous', resourceId: 'POST /v1/submissions' });
    expect(at('192.0.2.12')[0]).toMatchObject({ action: 'auth.failure', details: { reason: 'invalid' } });
    expect(at('192.0.2.14').map((l) => l.action)).toEqual(['auth.success', 'message.relayed', 'submission.accepted']);
    expect(at('192.0.2.14').every((l) => l.actor === 'acme-health')).toBe(true);
    expect(at('192.0.2.14').find((l) => l.action === 'submission.accepted')?.resourceId).toBe(id);
    expect(at('192.0.2.16')[0]).toMatchObject({ action: 'auth.success', actor: 'admin', resourceId: 'GET /v1/admin/emergency' });
    await waitFor(() => world.stack.app.inbox.get(id), { what: 'second record' });
    world.stack.app.inbox.ack(id);
  });
});
