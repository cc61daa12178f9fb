import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, expectProblem, startSmsStack, type SmsStack } from './helpers.ts';

const LIMIT = 4096;
const ID = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

let world: SmsStack;

beforeAll(async () => {
  world = await startSmsStack({ ifaceEnv: { INTAKE_MAX_BODY_BYTES: String(LIMIT) }, appEnv: { CHART_UPDATE_MAX_BODY_BYTES: String(LIMIT) } });
});
afterAll(async () => {
  await world?.stop();
});

/** A JSON body of `bytes` bytes. */
const sized = (make: (pad: string) => string, bytes: number): string => make('x'.repeat(bytes - Buffer.byteLength(make(''))));
const jsonOf = (bytes: number): string => sized((pad) => JSON.stringify({ pad }), bytes);
const fhirOf = (bytes: number): string => sized((data) => JSON.stringify({ resourceType: 'Binary', data }), bytes);
const formOf = (bytes: number): string => sized((pad) => `MessageSid=SM1&Pad=${pad}`, bytes);

interface BodyRoute {
  service: 'iface' | 'app';
  name: string;
  limit: number;
  request: (bytes: number) => InjectOptions;
}

const routes = (): BodyRoute[] => {
  const { tokens } = world.stack;
  return [
    { service: 'iface', name: 'POST /v1/submissions', limit: LIMIT, request: (n) => ({ method: 'POST', url: '/v1/submissions', headers: { ...bearer(tokens.partner), 'content-type': 'application/fhir+json' }, payload: fhirOf(n) }) },
    { service: 'iface', name: 'PUT /v1/admin/emergency', limit: LIMIT, request: (n) => ({ method: 'PUT', url: '/v1/admin/emergency', headers: { ...bearer(tokens.admin), 'content-type': 'application/json' }, payload: jsonOf(n) }) },
    { service: 'app', name: 'POST /v1/chart-updates', limit: LIMIT, request: (n) => ({ method: 'POST', url: '/v1/chart-updates', headers: { ...bearer(tokens.writer), 'content-type': 'application/fhir+json' }, payload: fhirOf(n) }) },
    { service: 'app', name: 'PUT /v1/admin/emergency', limit: LIMIT, request: (n) => ({ method: 'PUT', url: '/v1/admin/emergency', headers: { ...bearer(tokens.admin), 'content-type': 'application/json' }, payload: jsonOf(n) }) },
    { service: 'app', name: 'POST /v1/inbox/:id/ack', limit: LIMIT, request: (n) => ({ method: 'POST', url: `/v1/inbox/${ID}/ack`, headers: { ...bearer(tokens.reader), 'content-type': 'application/json' }, payload: jsonOf(n) }) },
    { service: 'app', name: 'POST /v1/messages', limit: 64 * 1024, request: (n) => ({ method: 'POST', url: '/v1/messages', headers: { ...bearer(tokens.messenger), 'content-type': 'application/json' }, payload: jsonOf(n) }) },
    {
      service: 'app',
      name: 'POST /webhooks/signalwire/message-status',
      limit: 64 * 1024,
      request: (n) => ({ method: 'POST', url: '/webhooks/signalwire/message-status', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: formOf(n) }),
    },
  ];
};

const serverOf = (service: 'iface' | 'app') => (service === 'iface' ? world.stack.iface.server : world.stack.app.server);

describe('body limits', () => {
  it('every route that takes a body reads exactly its limit and answers 413 problem+json one byte over it', async () => {
    for (const route of routes()) {
      const exact = route.request(route.limit);
      expect(Buffer.byteLength(exact.payload as string), route.name).toBe(route.limit);
      expect((await serverOf(route.service).inject(exact)).statusCode, route.name).not.toBe(413);
      const res = await serverOf(route.service).inject(route.request(route.limit + 1));
      expect(res.statusCode, route.name).toBe(413);
      expectProblem(res, 413, 'CR_HTTP_BODY_TOO_LARGE');
      // Far over the limit: the same answer, not a crash or a 5xx.
      expectProblem(await serverOf(route.service).inject(route.request(route.limit * 8)), 413, 'CR_HTTP_BODY_TOO_LARGE');
    }
  });

  it('a body within the limit is read (the answer is about its content, not its size)', async () => {
    for (const route of routes()) {
      const res = await serverOf(route.service).inject(route.request(Math.min(route.limit, 2048)));
      expect(res.statusCode, `${route.name}: ${res.body}`).not.toBe(413);
      expect(res.statusCode, route.name).toBeLessThan(500);
    }
  });

  it('authenticates before reading a body: an oversize request without a token is a 401, not a 413', async () => {
    for (const route of routes().filter((r) => !r.name.startsWith('POST /webhooks'))) {
      const req = route.request(route.limit * 4);
      const headers = { ...(req.headers as Record<string, string>) };
      delete headers.authorization;
      expectProblem(await serverOf(route.service).inject({ ...req, headers }), 401, 'CR_AUTH_MISSING');
    }
  });

  it('GET routes do not read a body at all, whatever its size', async () => {
    const { tokens } = world.stack;
    for (const url of ['/v1/inbox', `/v1/inbox/${ID}`, '/v1/admin/emergency']) {
      const token = url.includes('admin') ? tokens.admin : tokens.reader;
      const res = await world.stack.app.server.inject({ method: 'GET', url, headers: { ...bearer(token), 'content-type': 'application/json' }, payload: jsonOf(LIMIT * 4) });
      expect(res.statusCode, url).toBeLessThan(500);
      expect([200, 404, 413]).toContain(res.statusCode);
    }
  });
});
