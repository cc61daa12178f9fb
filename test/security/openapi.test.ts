import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmsStack, type SmsStack } from './helpers.ts';

let world: SmsStack;

beforeAll(async () => {
  world = await startSmsStack();
});
afterAll(async () => {
  await world?.stop();
});

/** Operational routes kept out of the document on purpose (core/http: `schema.hide`). */
const HIDDEN = ['GET /openapi.json', 'GET /metrics', 'GET /healthz', 'GET /readyz'];

/** Every route the server really has (`METHOD /path` with OpenAPI `{param}`), from fastify's own route tree; HEAD is implied by GET. */
function registeredRoutes(server: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of server.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^(.*?)[├└]── (\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('').replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') out.push(`${method} ${path}`);
  }
  return out.sort();
}

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { security?: Array<Record<string, unknown>>; responses?: Record<string, unknown>; parameters?: Array<{ in: string; name: string; required?: boolean }> }>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string }>; schemas?: Record<string, unknown> };
}

function resolveRefs(doc: OpenApiDoc, value: unknown, where: string): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key === '$ref' && typeof inner === 'string') {
      expect(inner, where).toMatch(/^#\//);
      const target = inner.slice(2).split('/').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], doc);
      expect(target, `${where}: ${inner}`).toBeDefined();
    } else resolveRefs(doc, inner, `${where}.${key}`);
  }
}

const services = (): Array<{ name: string; server: FastifyInstance; secured: string[]; open: string[] }> => [
  {
    name: 'interface',
    server: world.stack.iface.server,
    secured: ['POST /v1/submissions', 'GET /v1/submissions/{id}', 'GET /v1/admin/emergency', 'PUT /v1/admin/emergency'],
    open: [],
  },
  {
    name: 'app',
    server: world.stack.app.server,
    secured: ['GET /v1/inbox', 'GET /v1/inbox/{id}', 'POST /v1/inbox/{id}/ack', 'POST /v1/chart-updates', 'GET /v1/chart-updates/{id}', 'POST /v1/messages', 'GET /v1/admin/emergency', 'PUT /v1/admin/emergency'],
    // Authenticated by the SignalWire signature, not a bearer token.
    open: ['POST /webhooks/signalwire/message-status'],
  },
];

describe('OpenAPI documents', () => {
  it('each service serves a valid OpenAPI 3.x document at /openapi.json, without a token', async () => {
    for (const { name, server } of services()) {
      const res = await server.inject({ method: 'GET', url: '/openapi.json' });
      expect(res.statusCode, name).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const doc = res.json<OpenApiDoc>();
      expect(doc.openapi).toMatch(/^3\.[01]\.\d+$/);
      expect(doc.info.title).toBe(`care-relay ${name}`);
      expect(typeof doc.info.version).toBe('string');
      expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
      for (const [path, ops] of Object.entries(doc.paths)) {
        expect(path, name).toMatch(/^\/[A-Za-z0-9/{}_.-]*$/);
        for (const [method, op] of Object.entries(ops)) {
          expect(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']).toContain(method);
          expect(op.responses && Object.keys(op.responses).length, `${method} ${path}: responses`).toBeGreaterThan(0);
          for (const param of path.match(/\{[^}]+\}/g) ?? []) {
            expect(op.parameters?.find((p) => p.in === 'path' && `{${p.name}}` === param), `${method} ${path}: ${param}`).toMatchObject({ required: true });
          }
        }
      }
      resolveRefs(doc, doc, name);
    }
  });

  it('lists every route the service has, with its method; only the operational routes are left out', async () => {
    for (const { name, server, secured, open } of services()) {
      const doc = (await server.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDoc>();
      const listed = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
      expect(listed, name).toEqual([...secured, ...open].sort());
      expect(registeredRoutes(server), name).toEqual([...listed, ...HIDDEN].sort());
    }
  });

  it('marks every authenticated route with the bearer scheme, and no public one', async () => {
    for (const { name, server, secured, open } of services()) {
      const doc = (await server.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDoc>();
      const op = (route: string) => {
        const [method, path] = route.split(' ') as [string, string];
        return doc.paths[path]![method.toLowerCase()]!;
      };
      for (const route of secured) expect(op(route).security, `${name} ${route}`).toEqual([{ bearer: [] }]);
      for (const route of open) expect(op(route).security, `${name} ${route}`).toBeUndefined();
    }
  });
});
