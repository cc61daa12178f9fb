import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryAudit } from '../../../services/core/audit/auditLog.ts';
import { authPlugin, type TokenStore } from '../../../services/core/http/auth.ts';
import { healthPlugin } from '../../../services/core/http/health.ts';
import { openapiPlugin } from '../../../services/core/http/openapi.ts';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';

let app: FastifyInstance;
afterEach(async () => {
  await app.close();
});

const noTokens: TokenStore = { lookup: () => undefined, byName: () => undefined, reload: () => {}, prepare: () => () => {}, size: 0 };

describe('openapiPlugin', () => {
  it('serves GET /openapi.json listing a route with its schema and bearer security', async () => {
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024, publicBaseUrl: 'https://relay.example.org/' });
    await app.register(openapiPlugin, { title: 'care-relay test', version: '1.2.3', publicBaseUrl: app.publicBaseUrl });
    await app.register(authPlugin, { tokens: noTokens, audit: memoryAudit() });
    await app.register(healthPlugin, {});
    app.post(
      '/v1/submissions',
      {
        config: { role: 'partner' },
        schema: {
          summary: 'Submit a payload',
          body: { type: 'object', required: ['kind'], properties: { kind: { type: 'string' } } },
          response: { 202: { type: 'object', properties: { id: { type: 'string' } } } },
        },
      },
      async (_req, reply) => reply.code(202).send({ id: 'x' }),
    );
    const res = await app.inject('/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json() as {
      openapi: string;
      info: { title: string; version: string };
      servers: { url: string }[];
      paths: Record<string, Record<string, { summary?: string; security?: unknown; requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info).toMatchObject({ title: 'care-relay test', version: '1.2.3' });
    expect(doc.servers).toEqual([{ url: 'https://relay.example.org' }]);
    const op = doc.paths['/v1/submissions']!.post!;
    expect(op.summary).toBe('Submit a payload');
    expect(op.security).toEqual([{ bearer: [] }]);
    expect(op.requestBody!.content['application/json']!.schema).toMatchObject({ type: 'object', required: ['kind'] });
    expect(op.responses).toHaveProperty('202');
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas).toHaveProperty('Problem');
    expect(Object.keys(doc.paths)).not.toContain('/healthz');
    expect(Object.keys(doc.paths)).not.toContain('/openapi.json');
  });
});
