import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { closeHttpServer, createHttpServer } from '../../../services/core/http/server.ts';
import { silentLogger } from '../../../services/core/log/logger.ts';
import { trickle } from '../../helpers/trickle.ts';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function serve(requestTimeoutMs: number, headersTimeoutMs: number): Promise<number> {
  app = createHttpServer({ logger: silentLogger, bodyLimit: 100_000, requestTimeoutMs, headersTimeoutMs });
  app.post('/v1/things', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

const HEAD = 'POST /v1/things HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n';
const MARGIN_MS = 1_500;

describe('request timeouts are honoured, not checked every 30 s', () => {
  it('a client trickling a body is cut with a 408 problem within the request timeout (+ a small margin)', async () => {
    const port = await serve(2_000, 1_000);
    const { elapsedMs, response } = await trickle(port, HEAD);
    expect(elapsedMs).toBeGreaterThanOrEqual(2_000 - 50);
    expect(elapsedMs).toBeLessThan(2_000 + MARGIN_MS);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
    expect(response).toContain('application/problem+json');
  });

  it('a client trickling its headers is cut within the headers timeout (+ a small margin)', async () => {
    const port = await serve(5_000, 1_000);
    const { elapsedMs, response } = await trickle(port, 'GET /v1/things HTTP/1.1\r\nHost: relay\r\nX-Slow: ');
    expect(elapsedMs).toBeLessThan(1_000 + MARGIN_MS);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closeHttpServer closes a connection still trickling at the deadline', async () => {
    const port = await serve(60_000, 30_000);
    // The request is in progress (its headers were read) before the close starts.
    const inProgress = new Promise<void>((r) => app!.server.once('request', () => r()));
    const slow = trickle(port, HEAD);
    await inProgress;
    const started = Date.now();
    await closeHttpServer(app!, 1_000);
    const closedIn = Date.now() - started;
    expect(closedIn).toBeGreaterThanOrEqual(1_000 - 50);
    expect(closedIn).toBeLessThan(1_000 + MARGIN_MS);
    expect((await slow).elapsedMs).toBeLessThan(1_000 + 2 * MARGIN_MS);
    app = undefined;
  });
});
