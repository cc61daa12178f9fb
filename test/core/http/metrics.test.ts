import type { FastifyInstance } from 'fastify';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { metricsPlugin } from '../../../services/core/http/metrics.ts';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';

let app: FastifyInstance;
afterEach(async () => {
  await app.close();
});

describe('metricsPlugin', () => {
  it('exposes the injected registry and counts requests by route pattern and status', async () => {
    const registry = new Registry();
    const relayed = new Counter({ name: 'care_relay_messages_relayed_total', help: 'relayed', registers: [registry] });
    relayed.inc(3);
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024 });
    await app.register(metricsPlugin, { registry });
    app.get('/v1/inbox/:id', async () => ({ ok: true }));
    await app.inject('/v1/inbox/abc');
    await app.inject('/v1/inbox/def');
    await app.inject('/nowhere/123');

    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(registry.contentType);
    expect(res.body).toContain('care_relay_messages_relayed_total 3');
    expect(res.body).toContain('care_relay_http_requests_total{method="GET",route="/v1/inbox/:id",status="200"} 2');
    expect(res.body).toContain('care_relay_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(res.body).toMatch(/care_relay_http_request_duration_seconds_count\{method="GET",route="\/v1\/inbox\/:id",status="200"\} 2/);
    expect(res.body).not.toContain('abc');
  });

  it('reuses metrics already on the registry (two servers, one registry)', async () => {
    const registry = new Registry();
    const first = createHttpServer({ logger: silentLogger, bodyLimit: 1024 });
    await first.register(metricsPlugin, { registry });
    await first.close();
    app = createHttpServer({ logger: silentLogger, bodyLimit: 1024 });
    await app.register(metricsPlugin, { registry, prefix: 'care_relay_' });
    expect((await app.inject('/metrics')).statusCode).toBe(200);
  });
});
