import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One delivery the sink accepted (the payload is kept in memory only, never printed). */
export interface SinkDelivery {
  /** The Idempotency-Key header: the envelope id. */
  envelopeId: string;
  /** Content type the interface service sent. */
  contentType: string;
  /** Payload bytes, when at most `keepBodyBytes`; empty for a larger payload (see `bytes` and `sha256`). */
  body: Buffer;
  /** Payload size in bytes. */
  bytes: number;
  /** Lower-case hex SHA-256 of the payload (computed as it streamed in). */
  sha256: string;
  /** How many times this id was posted (a retry after a lost 2xx counts here). */
  attempts: number;
}

/** How the sink answers, for demos and fault tests. */
export type SinkMode =
  | { kind: 'ok' }
  | { kind: 'fail'; status: number; count?: number }
  | { kind: 'slow'; delayMs: number; count?: number }
  /**
   * A flapping EMR, driven by requests rather than the clock: `burst` requests answered `status`,
   * then `between` answered normally, again and again until `failures` requests have failed; then ok.
   */
  | { kind: 'flap'; status: number; burst: number; between: number; failures: number };

/** A demo EMR interface engine endpoint: records deliveries by envelope id and answers 200. */
export interface EmrSink {
  /** Base URL; deliveries go to `${url}/deliveries`. */
  url: string;
  /** Accepted deliveries by envelope id. */
  deliveries: Map<string, SinkDelivery>;
  /** Every request received, including failed ones (envelope id and the status answered). */
  requests: Array<{ envelopeId: string; status: number }>;
  /** The environment the interface service needs to deliver here: EMR_URL. */
  serviceEnv(): Record<string, string>;
  /** Sets how the next requests are answered. */
  setMode(mode: SinkMode): void;
  /** Stops listening. */
  stop(): Promise<void>;
}

/** Options for {@link startEmrSink}. */
export interface EmrSinkOptions {
  /** Port (0 picks a free one). */
  port?: number;
  /** Address to listen on. */
  host?: string;
  /** Largest body accepted (default 5 GiB: a large chart update streams through). */
  maxBodyBytes?: number;
  /** Largest body kept in memory (default 2 MiB); a larger one is kept as size and SHA-256 only. */
  keepBodyBytes?: number;
  /** Called once per new delivery, with metadata only. */
  onDelivery?: (delivery: { envelopeId: string; contentType: string; bytes: number }) => void;
}

/** A request body read as a stream: size and SHA-256 always, the bytes only up to `keep`; undefined past `limit`. */
async function readBody(req: IncomingMessage, limit: number, keep: number): Promise<{ body: Buffer; bytes: number; sha256: string } | undefined> {
  const chunks: Buffer[] = [];
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    hash.update(chunk as Buffer);
    if (size <= keep) chunks.push(chunk as Buffer);
    else chunks.length = 0;
  }
  return { body: size <= keep ? Buffer.concat(chunks) : Buffer.alloc(0), bytes: size, sha256: hash.digest('hex') };
}

/**
 * Starts the demo EMR sink. It stands in for the hospital's interface engine in
 * `npm start`, docker-compose and the tests: POST /deliveries with an
 * Idempotency-Key is recorded once per key; GET /deliveries lists ids and sizes.
 * It also serves `POST /_mode` (JSON SinkMode) so a demo or a fault test can make it fail.
 */
export async function startEmrSink(options: EmrSinkOptions = {}): Promise<EmrSink> {
  const deliveries = new Map<string, SinkDelivery>();
  const requests: EmrSink['requests'] = [];
  let mode: SinkMode = { kind: 'ok' };
  const limit = options.maxBodyBytes ?? 5 * 1024 ** 3;
  const keep = options.keepBodyBytes ?? 2 * 1024 * 1024;

  let flapped = { requests: 0, failed: 0 };
  const nextMode = (): SinkMode => {
    const current = mode;
    if (current.kind === 'flap') {
      const failing = flapped.requests++ % (current.burst + current.between) < current.burst;
      if (!failing) return { kind: 'ok' };
      if (++flapped.failed >= current.failures) mode = { kind: 'ok' };
      return { kind: 'fail', status: current.status };
    }
    if (current.kind !== 'ok' && current.count !== undefined) {
      const left = current.count - 1;
      mode = left > 0 ? { ...current, count: left } : { kind: 'ok' };
    }
    return current;
  };

  const server: Server = createServer((req, res) => {
    const reply = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    };
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method === 'GET' && path === '/healthz') return reply(200, { status: 'ok' });
      if (req.method === 'GET' && path === '/deliveries') {
        return reply(200, [...deliveries.values()].map((d) => ({ envelopeId: d.envelopeId, contentType: d.contentType, bytes: d.bytes, attempts: d.attempts })));
      }
      if (req.method === 'POST' && path === '/_mode') {
        const read = await readBody(req, 4096, 4096);
        try {
          mode = JSON.parse(read?.body.toString('utf8') ?? '') as SinkMode;
          flapped = { requests: 0, failed: 0 };
          return reply(200, mode);
        } catch {
          return reply(400, { error: 'expected a JSON mode' });
        }
      }
      if (req.method !== 'POST' || path !== '/deliveries') return reply(404, { error: 'not found' });

      const envelopeId = String(req.headers['idempotency-key'] ?? '');
      const read = await readBody(req, limit, keep);
      if (!envelopeId) return reply(400, { error: 'Idempotency-Key header required' });
      if (read === undefined) return reply(413, { error: 'too large' });
      const current = nextMode();
      if (current.kind === 'fail') {
        requests.push({ envelopeId, status: current.status });
        return reply(current.status, { error: 'injected failure' });
      }
      if (current.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, current.delayMs));
      const existing = deliveries.get(envelopeId);
      if (existing) {
        existing.attempts += 1;
      } else {
        const contentType = String(req.headers['content-type'] ?? 'application/octet-stream');
        deliveries.set(envelopeId, { envelopeId, contentType, ...read, attempts: 1 });
        options.onDelivery?.({ envelopeId, contentType, bytes: read.bytes });
      }
      requests.push({ envelopeId, status: 200 });
      if (res.destroyed) return;
      return reply(200, { received: envelopeId, duplicate: Boolean(existing) });
    })().catch(() => {
      if (!res.headersSent) reply(500, { error: 'sink error' });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  const url = `http://${host}:${port}`;
  return {
    url,
    deliveries,
    serviceEnv: () => ({ EMR_URL: `${url}/deliveries` }),
    requests,
    setMode: (m) => {
      mode = m;
      flapped = { requests: 0, failed: 0 };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
