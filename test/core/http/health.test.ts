import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { healthPlugin } from '../../../services/core/http/health.ts';
import { createHttpServer } from '../../../services/core/http/server.ts';
import { captureLogger } from './helpers.ts';

let app: FastifyInstance;
afterEach(async () => {
  await app.close();
});

function build(checks: Parameters<typeof healthPlugin>[1]['checks'], timeoutMs?: number) {
  const logs = captureLogger();
  app = createHttpServer({ logger: logs.logger, bodyLimit: 1024 });
  void app.register(healthPlugin, { checks, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  return logs;
}

describe('healthPlugin', () => {
  it('GET /healthz answers 200 while the process runs', async () => {
    build({ queue: () => false });
    const res = await app.inject('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 when every check passes', async () => {
    build({ queue: async () => true, keys: () => undefined });
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { queue: 'ok', keys: 'ok' } });
  });

  it('GET /readyz answers 503 naming the failed checks, without internals', async () => {
    const logs = build(
      {
        keys: () => true,
        queue: async () => {
          throw Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:4566 secret-host'), { code: 'ECONNREFUSED' });
        },
        inbox: () => false,
        slow: () => new Promise<boolean>(() => {}),
      },
      50,
    );
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toEqual({
      type: 'https://care-relay.dev/problems/http-not-ready',
      title: 'Not ready',
      status: 503,
      detail: 'Readiness checks failed: queue, inbox, slow.',
      code: 'CR_HTTP_NOT_READY',
      checks: { keys: 'ok', queue: 'failed', inbox: 'failed', slow: 'timeout' },
    });
    expect(res.body).not.toContain('ECONNREFUSED');
    const warn = logs.lines.find((l) => l.check === 'queue');
    expect(warn).toMatchObject({ msg: 'readiness check failed', errorCode: 'ECONNREFUSED' });
    expect(logs.text()).not.toContain('secret-host');
  });
});
