import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../services/core/metrics/registry.ts';
import { createConsumer, type ReceivedMessage } from '../../../services/core/transport/consumer.ts';
import { ensureQueues, type EnsuredQueue } from '../../../services/core/transport/queues.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { counterValue, deleteQueues, depth, put, take, waitFor } from './helpers.ts';

let sqs: TestSqs;
let n = 0;
beforeAll(async () => {
  sqs = await startTestSqs();
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
});

async function freshQueue(): Promise<EnsuredQueue> {
  const { 'app-to-interface': q } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}l${n++}-`, queues: ['app-to-interface'] });
  return q;
}

describe('heartbeat', () => {
  it('keeps a long-held message invisible past its visibility timeout', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('interface', { defaultMetrics: false });
    await put(sqs.client, q.url, 'held for 5 s');
    let finished = false;
    let started = false;
    const consumer = createConsumer({
      client: sqs.client,
      queue: q,
      visibilityTimeoutSeconds: 2,
      waitTimeSeconds: 1,
      metrics,
      handler: async () => {
        started = true;
        await new Promise((r) => setTimeout(r, 5000));
        finished = true;
        return { status: 'done' };
      },
    });
    consumer.start();
    try {
      await waitFor(() => started, 5000, 'handler start');
      const stolen = [];
      while (!finished) stolen.push(...(await take(sqs.client, q.url, 1)));
      expect(stolen).toEqual([]);
      await waitFor(async () => consumer.inFlightCount === 0, 5000, 'settled');
      expect(await depth(sqs.client, q.url)).toEqual({ visible: 0, inFlight: 0 });
      expect(await counterValue(metrics.transport.heartbeatFailures, { queue: 'app-to-interface' })).toBe(0);
    } finally {
      await consumer.stop({ deadlineMs: 500 });
    }
  });
});

describe('shutdown', () => {
  it('stop() lets in-flight work finish within the deadline and releases the rest for another consumer', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('interface', { defaultMetrics: false });
    for (const body of ['quick-1', 'quick-2', 'slow-obeys-abort', 'slow-ignores-abort']) await put(sqs.client, q.url, body);
    let stopping!: () => void;
    const stopBegins = new Promise<void>((r) => (stopping = r));
    const aborted: string[] = [];
    const first = createConsumer({
      client: sqs.client,
      queue: q,
      maxInFlight: 4,
      waitTimeSeconds: 1,
      metrics,
      handler: async (m, signal) => {
        if (m.body.startsWith('quick')) {
          await stopBegins;
          await new Promise((r) => setTimeout(r, 200));
          return { status: 'done' };
        }
        if (m.body === 'slow-ignores-abort') return new Promise(() => {});
        await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
        aborted.push(m.body);
        // Too late: the consumer has already released it; this must not delete it.
        return { status: 'done' };
      },
    });
    first.start();
    await waitFor(() => first.inFlightCount === 4, 5000, 'four held');
    stopping();
    const t0 = Date.now();
    await first.stop({ deadlineMs: 1000 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3000);
    expect(first.isRunning).toBe(false);
    expect(first.inFlightCount).toBe(0);
    expect(aborted).toEqual(['slow-obeys-abort']);
    expect(await counterValue(metrics.transport.done, { queue: 'app-to-interface' })).toBe(2);
    expect(await counterValue(metrics.transport.released, { queue: 'app-to-interface' })).toBe(2);

    const again: ReceivedMessage[] = [];
    const second = createConsumer({
      client: sqs.client,
      queue: q,
      waitTimeSeconds: 1,
      handler: async (m) => {
        again.push(m);
        return { status: 'done' };
      },
    });
    second.start();
    try {
      // Well inside the 30 s visibility timeout: they were released, not left to expire.
      await waitFor(() => again.length === 2, 5000, 'released messages redelivered');
      expect(again.map((m) => m.body).sort()).toEqual(['slow-ignores-abort', 'slow-obeys-abort']);
      expect(again.every((m) => m.receiveCount === 2)).toBe(true);
    } finally {
      await second.stop({ deadlineMs: 500 });
    }
  });

  it('a consumer killed mid-flight loses nothing: SQS redelivers after the visibility timeout', async () => {
    const q = await freshQueue();
    await put(sqs.client, q.url, 'survives a crash');
    const fixture = fileURLToPath(new URL('./fixtures/killableConsumer.ts', import.meta.url));
    const child = spawn(process.execPath, [fixture, sqs.endpoint, sqs.region, q.url, q.dlqUrl, q.quarantineUrl, process.env.SQS_ENDPOINT ? 'chain' : 'static'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('held '), 10_000, 'child to hold the message');
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.once('exit', r));
    const killedAt = Date.now();
    expect(await take(sqs.client, q.url)).toEqual([]);
    const again: ReceivedMessage[] = [];
    const survivor = createConsumer({
      client: sqs.client,
      queue: q,
      waitTimeSeconds: 1,
      handler: async (m) => {
        again.push(m);
        return { status: 'done' };
      },
    });
    survivor.start();
    try {
      await waitFor(() => again.length === 1, 10_000, 'redelivery');
      expect(again[0]!.body).toBe('survives a crash');
      expect(again[0]!.receiveCount).toBe(2);
      expect(`held ${again[0]!.messageId}`).toBe(out.trim());
      expect(Date.now() - killedAt).toBeLessThan(5000);
    } finally {
      await survivor.stop({ deadlineMs: 500 });
    }
  });
});
