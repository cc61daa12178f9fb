import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createLogger } from '../../../services/core/log/logger.ts';
import { createSignalWireClient, type SignalWireApi } from '../../../services/app/sms/client.ts';
import type { PendingSendJob, RedactionJob, SmsQueueJob } from '../../../services/app/sms/redactionJob.ts';
import type { SmsSendClaims } from '../../../services/app/sms/sendClaims.ts';
import type { HandlerResult, SmsConfig } from '../../../services/app/sms/types.ts';
import { statusWebhook, type StatusWebhookOptions } from '../../../services/app/sms/webhook.ts';
import { waitFor as waitUntil } from '../../helpers/wait.ts';
import { startFakeSignalWire, type FakeSignalWire, type FakeSignalWireOptions } from '../../../services/devtools/signalwire/index.ts';
import { freePort } from '../../helpers/processes.ts';

/** A free loopback port (so PUBLIC_BASE_URL is known before the server starts). */
export { freePort };

/** A pino logger whose JSON lines the test can read. */
export function captureLogger(): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const logger = createLogger({ service: 'app', level: 'debug', destination });
  const text = () => chunks.join('');
  return { logger, text, lines: () => text().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** An audit sink that keeps events in memory (the core one). */
export { memoryAudit } from '../../../services/core/audit/auditLog.ts';

/** A queued job in {@link memoryQueue}. */
export interface QueuedJob {
  job: RedactionJob;
  delaySeconds: number;
  dueAt: number;
}

/**
 * An in-memory stand-in for the redaction queue, honouring delays and handler re-delays. The jobs a send
 * enqueues before its create call (`trigger: 'pending'`) are kept apart, in `pending`.
 */
export function memoryQueue() {
  const jobs: QueuedJob[] = [];
  const pending: Array<{ job: PendingSendJob; delaySeconds: number }> = [];
  const results: HandlerResult[] = [];
  return {
    jobs,
    pending,
    results,
    enqueue: async (job: SmsQueueJob, delaySeconds: number) => {
      if (job.trigger === 'pending') pending.push({ job, delaySeconds });
      else jobs.push({ job, delaySeconds, dueAt: Date.now() + delaySeconds * 1000 });
    },
    /** Runs the handler on each due job once; retried jobs are re-delayed (`scale` shrinks delays for tests). */
    async runDue(handler: (m: { body: string }, s: AbortSignal) => Promise<HandlerResult>, scale = 1): Promise<HandlerResult[]> {
      const now = Date.now();
      const due = jobs.filter((j) => j.dueAt <= now);
      const out: HandlerResult[] = [];
      for (const j of due) {
        jobs.splice(jobs.indexOf(j), 1);
        const r = await handler({ body: JSON.stringify(j.job) }, new AbortController().signal);
        out.push(r);
        results.push(r);
        if (r.status === 'retry') jobs.push({ job: j.job, delaySeconds: r.afterSeconds ?? 1, dueAt: Date.now() + (r.afterSeconds ?? 1) * 1000 * scale });
      }
      return out;
    },
  };
}

/** Polls `check` until it returns a truthy value or the deadline passes (the shared helper, positional options). */
export function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  return waitUntil(check, { timeoutMs, what, intervalMs: 20 });
}


/** The fake, an SDK client for it and an SmsConfig pointing at it. */
export interface SmsWorld {
  fake: FakeSignalWire;
  api: SignalWireApi;
  config: SmsConfig;
  port: number;
}

/** Starts the fake and builds a config whose PUBLIC_BASE_URL is a free loopback port. */
export async function startWorld(fakeOptions: FakeSignalWireOptions = {}, overrides: Partial<SmsConfig> = {}): Promise<SmsWorld> {
  const fake = await startFakeSignalWire(fakeOptions);
  const port = await freePort();
  const config: SmsConfig = {
    projectId: fake.projectId,
    apiToken: fake.token,
    spaceUrl: fake.url,
    signingKey: fake.signingKey,
    fromNumber: '+15550009999',
    publicBaseUrl: `http://127.0.0.1:${port}`,
    redactionMode: 'redact',
    sentGraceSeconds: 1,
    fallbackDelaySeconds: 2,
    redactionWindowSeconds: 60,
    hmacKey: 'test-hmac-key',
    allowInsecure: true,
    retryBaseSeconds: 1,
    ...overrides,
  };
  const api = createSignalWireClient({ projectId: config.projectId, apiToken: config.apiToken, spaceUrl: config.spaceUrl, allowInsecure: true });
  return { fake, api, config, port };
}

/** A fastify server on the world's port with the status webhook plugin. */
export async function startWebhook(world: SmsWorld, options: Omit<StatusWebhookOptions, 'config'>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await app.register(statusWebhook, { config: world.config, ...options });
  await app.listen({ port: world.port, host: '127.0.0.1' });
  return app;
}

/** Fast retries for tests. */
export const fastRetry = { baseDelayMs: 5, maxDelayMs: 20, attempts: 4 };

/** Idempotency-Key claims for senders tested without keys (a key is refused: use `createSmsSendClaims` on a state table). */
export const keylessClaims: SmsSendClaims = {
  async claim(_caller, key) {
    if (key !== undefined) throw new Error('keylessClaims: this test sender takes no Idempotency-Key');
    return { kind: 'none' };
  },
  async sent() {},
  async failed() {},
  async recovered() {},
};
