import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, startSmsStack, type SmsStack } from './helpers.ts';

let world: SmsStack;

beforeAll(async () => {
  // Every route is called without and with wrong tokens from one source: the failed-authentication
  // limiter (tested on its own) would answer the later, valid requests 429. Headers are the point here.
  const noLimit = { AUTH_FAILURE_LIMIT: '100000' };
  world = await startSmsStack({ ifaceEnv: noLimit, appEnv: noLimit });
});
afterAll(async () => {
  await world?.stop();
});

const ID = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const FHIR = JSON.stringify({ resourceType: 'Observation', status: 'final', code: { text: 'cache test' } });

/** A body that gets each route past validation (so the 2xx answer is checked too). */
const BODIES: Record<string, { type: string; payload: string }> = {
  'POST /v1/submissions': { type: 'application/fhir+json', payload: FHIR },
  'POST /v1/chart-updates': { type: 'application/fhir+json', payload: FHIR },
  'POST /v1/messages': { type: 'application/json', payload: JSON.stringify({ to: '+15551230002', body: 'Cache test' }) },
  'PUT /v1/admin/emergency': { type: 'application/json', payload: JSON.stringify({ active: false }) },
  'POST /v1/inbox/{id}/ack': { type: 'application/json', payload: '{}' },
};

/** Every authenticated route (`METHOD /path`) of a service, from its OpenAPI document. */
async function securedRoutes(server: FastifyInstance): Promise<string[]> {
  const doc = (await server.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>();
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => op.security !== undefined).map(([m]) => `${m.toUpperCase()} ${path}`));
}

function requestFor(route: string, headers: Record<string, string>): InjectOptions {
  const [method, path] = route.split(' ') as [InjectOptions['method'], string];
  const body = BODIES[route];
  return {
    method,
    url: path.replace('{id}', ID),
    headers: { ...headers, ...(body ? { 'content-type': body.type } : {}) },
    ...(body ? { payload: body.payload } : {}),
  };
}

describe('Cache-Control on authenticated routes and errors', () => {
  it('every response of every authenticated route of both services (2xx and every error) carries Cache-Control: no-store', async () => {
    const { tokens } = world.stack;
    const callers: Record<string, Record<string, string>> = {
      none: {},
      wrong: bearer('not-a-token'),
      ...Object.fromEntries(Object.entries(tokens).map(([name, token]) => [name, bearer(token)])),
    };
    const seen = new Set<number>();
    for (const server of [world.stack.iface.server, world.stack.app.server]) {
      const routes = await securedRoutes(server);
      expect(routes.length).toBeGreaterThan(2);
      for (const route of routes) {
        for (const [caller, headers] of Object.entries(callers)) {
          const res = await server.inject(requestFor(route, headers));
          seen.add(res.statusCode);
          expect(res.headers['cache-control'], `${route} as ${caller}: ${res.statusCode}`).toBe('no-store');
        }
      }
    }
    // The sweep really covered successes as well as refusals.
    for (const status of [200, 202, 401, 403, 404]) expect([...seen]).toContain(status);
  });

  it('GET /v1/inbox with a reader token (the PHI listing) is no-store', async () => {
    const res = await world.stack.app.server.inject({ method: 'GET', url: '/v1/inbox', headers: bearer(world.stack.tokens.reader) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('every error response is no-store, on public and unknown routes too', async () => {
    for (const server of [world.stack.iface.server, world.stack.app.server]) {
      for (const req of [
        { method: 'GET', url: '/no/such/route' },
        { method: 'POST', url: '/webhooks/signalwire/message-status', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'MessageSid=SM1' },
        { method: 'DELETE', url: '/healthz' },
      ] as InjectOptions[]) {
        const res = await server.inject(req);
        expect(res.statusCode, `${req.method} ${req.url}`).toBeGreaterThanOrEqual(400);
        expect(res.headers['cache-control'], `${req.method} ${req.url}`).toBe('no-store');
      }
    }
  });
});
