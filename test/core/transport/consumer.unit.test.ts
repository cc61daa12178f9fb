import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../../services/core/metrics/registry.ts';
import { backoffDelay } from '../../../services/core/transport/backoff.ts';
import { createConsumer } from '../../../services/core/transport/consumer.ts';
import { createDedupeSet } from '../../../services/core/transport/dedupe.ts';
import { counterValue, testQueue } from './helpers.ts';
import { fakeClient, hang } from './fakeClient.ts';


const messages = (count: number, from = 0): unknown[] =>
  Array.from({ length: count }, (_, i) => ({ MessageId: `id-${from + i}`, ReceiptHandle: `rh-${from + i}`, Body: 'x', Attributes: { ApproximateReceiveCount: '1' } }));

/** A fake client that deletes what it is asked to, answers the nth receive with `replies[n]`, then hangs (a long poll). */
function pollingClient(replies: unknown[][]): ReturnType<typeof fakeClient> {
  let polls = 0;
  return fakeClient(async (call, signal) => {
    if (call.name === 'DeleteMessageBatch') {
      const entries = call.input.Entries as { Id: string }[];
      return { Successful: entries.map((e) => ({ Id: e.Id })) };
    }
    if (call.name !== 'ReceiveMessage') return {};
    const reply = replies[polls++];
    return reply ? { Messages: reply } : hang(signal);
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('grows exponentially from the base, stays within [d/2, d] and is capped', () => {
    const opts = { base: 2, max: 300 };
    expect(backoffDelay(1, { ...opts, random: () => 0 })).toBe(1);
    expect(backoffDelay(1, { ...opts, random: () => 1 })).toBe(2);
    expect(backoffDelay(4, { ...opts, random: () => 1 })).toBe(16);
    expect(backoffDelay(4, { ...opts, random: () => 0 })).toBe(8);
    expect(backoffDelay(50, { ...opts, random: () => 1 })).toBe(300);
    expect(backoffDelay(0, { ...opts, random: () => 1 })).toBe(2);
  });
});

describe('consumer heartbeat (fake timers)', () => {
  it('extends all held messages with one timer, in batches of 10, and counts failed entries', async () => {
    let receives = 0;
    const { client, calls } = fakeClient(async (call, signal) => {
      if (call.name === 'ReceiveMessage') {
        receives++;
        if (receives === 1) return { Messages: messages(10) };
        if (receives === 2) return { Messages: messages(2, 10) };
        return hang(signal);
      }
      if (call.name === 'ChangeMessageVisibilityBatch') {
        const entries = call.input.Entries as { Id: string }[];
        const [first, ...rest] = entries;
        // The first entry of each batch fails: it must be counted, not assumed extended.
        return { Successful: rest.map((e) => ({ Id: e.Id })), Failed: [{ Id: first!.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true }] };
      }
      return {};
    });
    const metrics = createMetrics('t', { defaultMetrics: false });
    const consumer = createConsumer({
      client,
      queue: testQueue('http://sqs.local/000/q'),
      maxInFlight: 12,
      visibilityTimeoutSeconds: 30,
      metrics,
      handler: () => new Promise(() => {}),
    });
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(consumer.inFlightCount).toBe(12);
    expect(calls.filter((c) => c.name === 'ReceiveMessage')).toHaveLength(2);
    expect(calls.filter((c) => c.name === 'ChangeMessageVisibilityBatch')).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(10_000);
    const beats = calls.filter((c) => c.name === 'ChangeMessageVisibilityBatch');
    expect(beats.map((b) => (b.input.Entries as unknown[]).length).sort((a, b) => a - b)).toEqual([2, 10]);
    expect(beats.every((b) => (b.input.Entries as { VisibilityTimeout: number }[]).every((e) => e.VisibilityTimeout === 30))).toBe(true);
    expect(await counterValue(metrics.transport.heartbeatFailures, { queue: 'q' })).toBe(2);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls.filter((c) => c.name === 'ChangeMessageVisibilityBatch')).toHaveLength(4);
    // Backpressure: full, so no third receive was made.
    expect(calls.filter((c) => c.name === 'ReceiveMessage')).toHaveLength(2);

    const stopped = consumer.stop({ deadlineMs: 5000 });
    await vi.advanceTimersByTimeAsync(5000);
    await stopped;
    const release = calls.filter((c) => c.name === 'ChangeMessageVisibilityBatch').slice(4);
    expect(release.flatMap((c) => (c.input.Entries as { VisibilityTimeout: number }[]).map((e) => e.VisibilityTimeout))).toEqual(Array(12).fill(0));
    expect(consumer.inFlightCount).toBe(0);
  });

  it('retries with exponential backoff from the receive count, capped', async () => {
    const { client, calls } = fakeClient(async (call, signal) => {
      if (call.name === 'ReceiveMessage') {
        if (calls.filter((c) => c.name === 'ReceiveMessage').length === 1) {
          return { Messages: [1, 3, 20].map((count) => ({ MessageId: `m${count}`, ReceiptHandle: `rh${count}`, Body: 'x', Attributes: { ApproximateReceiveCount: String(count) } })) };
        }
        return hang(signal);
      }
      return {};
    });
    const consumer = createConsumer({
      client,
      queue: testQueue('http://sqs.local/000/q', { dlqUrl: 'd', quarantineUrl: 'q' }),
      retryBaseSeconds: 2,
      retryMaxSeconds: 60,
      random: () => 1,
      handler: async () => ({ status: 'retry', reason: 'CR_TEST' }),
    });
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    // The three retries leave in one batch call, each entry with its own delay.
    const batches = calls.filter((c) => c.name === 'ChangeMessageVisibilityBatch');
    expect(batches).toHaveLength(1);
    const entries = batches[0]!.input.Entries as { ReceiptHandle: string; VisibilityTimeout: number }[];
    expect(Object.fromEntries(entries.map((e) => [e.ReceiptHandle, e.VisibilityTimeout]))).toEqual({ rh1: 2, rh3: 8, rh20: 60 });
    const stopped = consumer.stop({ deadlineMs: 100 });
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
  });

  it('backs off on receive errors, capped, and recovers without being restarted', async () => {
    let failing = true;
    const { client, calls } = fakeClient(async (call, signal) => {
      if (call.name !== 'ReceiveMessage') return {};
      if (failing) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return hang(signal);
    });
    const consumer = createConsumer({
      client,
      queue: testQueue('http://sqs.local/000/q', { dlqUrl: 'd', quarantineUrl: 'q' }),
      receiveErrorBaseMs: 1000,
      receiveErrorMaxMs: 4000,
      random: () => 1,
      handler: async () => ({ status: 'done' }),
    });
    consumer.start();
    const receives = (): number => calls.filter((c) => c.name === 'ReceiveMessage').length;
    await vi.advanceTimersByTimeAsync(0);
    expect(receives()).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(receives()).toBe(1);
    await vi.advanceTimersByTimeAsync(1); // 1 s after the first failure
    expect(receives()).toBe(2);
    await vi.advanceTimersByTimeAsync(2000); // then 2 s
    expect(receives()).toBe(3);
    await vi.advanceTimersByTimeAsync(4000); // then 4 s
    expect(receives()).toBe(4);
    await vi.advanceTimersByTimeAsync(4000); // capped at 4 s
    expect(receives()).toBe(5);
    expect(consumer.health()).toMatchObject({ consecutiveReceiveErrors: 5, lastReceiveError: 'ECONNREFUSED' });
    expect(consumer.ready()).toBe(false);
    failing = false;
    await vi.advanceTimersByTimeAsync(4000);
    expect(receives()).toBe(6);
    // The open long poll has not answered yet; stop() aborts it at once.
    const stopped = consumer.stop({ deadlineMs: 1000 });
    await vi.advanceTimersByTimeAsync(0);
    await stopped;
    expect(consumer.isRunning).toBe(false);
  });
});

describe('a fault outside the receive call', () => {
  it('does not end the receive loop: the batch\'s other messages are handled, it backs off unready, and receives again', async () => {
    // A first reply no SQS would send: taking its first entry throws inside the consumer.
    const { client, calls } = pollingClient([[null, ...messages(1)], messages(1, 1)]);
    const metrics = createMetrics('t', { defaultMetrics: false });
    const logged: { level: string; msg: string; code?: string }[] = [];
    const record = (level: string) => (obj: { code?: string }, msg: string) => logged.push({ level, msg, code: obj.code });
    const logger = { child: () => logger, info: record('info'), warn: record('warn'), error: record('error'), debug: record('debug') };
    const handled: string[] = [];
    const consumer = createConsumer({
      client,
      queue: testQueue('http://sqs.local/000/q', { dlqUrl: 'd', quarantineUrl: 'q' }),
      receiveErrorBaseMs: 1000,
      random: () => 1,
      metrics,
      logger: logger as never,
      handler: async (m) => {
        handled.push(m.messageId);
        return { status: 'done' };
      },
    });
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(handled).toEqual(['id-0']);
    expect(consumer.isRunning).toBe(true);
    expect(consumer.ready()).toBe(false);
    expect(consumer.health()).toMatchObject({ running: true, consecutiveReceiveErrors: 1, lastReceiveError: 'TypeError' });
    expect(await counterValue(metrics.transport.receiveErrors, { queue: 'q' })).toBe(1);
    expect(logged).toContainEqual({ level: 'error', msg: 'receive loop step failed; backing off', code: 'TypeError' });
    expect(calls.filter((c) => c.name === 'ReceiveMessage')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000); // the backoff's first step
    expect(calls.filter((c) => c.name === 'ReceiveMessage').length).toBeGreaterThanOrEqual(2);
    expect(handled).toEqual(['id-0', 'id-1']);
    expect(consumer.ready()).toBe(true);
    await vi.waitFor(() => expect(consumer.inFlightCount).toBe(0)); // the deletes' batch
    expect(calls.filter((c) => c.name === 'DeleteMessageBatch').flatMap((c) => (c.input.Entries as { ReceiptHandle: string }[]).map((e) => e.ReceiptHandle))).toEqual(['rh-0', 'rh-1']);
    const stopped = consumer.stop({ deadlineMs: 1000 });
    await vi.advanceTimersByTimeAsync(0);
    await stopped;
    expect(consumer.isRunning).toBe(false);
  });

  it('stops at once while backing off after such a fault', async () => {
    const { client } = fakeClient(async (call) => (call.name === 'ReceiveMessage' ? { Messages: [null] } : {}));
    const consumer = createConsumer({
      client,
      queue: testQueue('http://sqs.local/000/q', { dlqUrl: 'd', quarantineUrl: 'q' }),
      receiveErrorBaseMs: 60_000,
      random: () => 1,
      handler: async () => ({ status: 'done' }),
    });
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(consumer.health().consecutiveReceiveErrors).toBe(1);
    const stopped = consumer.stop({ deadlineMs: 1000 });
    await vi.advanceTimersByTimeAsync(0);
    await stopped;
    expect(consumer.isRunning).toBe(false);
  });
});

describe('receive while handling', () => {
  it('keeps a long poll open while a batch is being handled, asking only for what maxInFlight leaves, and none once full', async () => {
    const { client, calls } = pollingClient([messages(3), messages(1, 3)]);
    const release: (() => void)[] = [];
    const handled: string[] = [];
    const consumer = createConsumer({
      client,
      queue: testQueue('http://sqs.local/000/q', { dlqUrl: 'd', quarantineUrl: 'q' }),
      maxInFlight: 4,
      handler: (message) => {
        handled.push(message.messageId);
        return new Promise((resolve) => release.push(() => resolve({ status: 'done' })));
      },
    });
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    const receives = (): Record<string, unknown>[] => calls.filter((c) => c.name === 'ReceiveMessage').map((c) => c.input);
    // The first batch (3) is being handled, none answered yet: the second poll went out at once,
    // for the one place left, and the message it brought is handled beside the batch.
    expect(handled).toEqual(['id-0', 'id-1', 'id-2', 'id-3']);
    expect(receives().map((r) => r.MaxNumberOfMessages)).toEqual([4, 1]);
    expect(consumer.inFlightCount).toBe(4);
    // Full: no third poll until a handler answers.
    await vi.advanceTimersByTimeAsync(1000);
    expect(receives()).toHaveLength(2);
    release.shift()!();
    await vi.advanceTimersByTimeAsync(0);
    expect(receives()).toHaveLength(3);
    expect(receives()[2]!.MaxNumberOfMessages).toBe(1);
    // stop() aborts the open poll and waits for the three still held; each is settled once.
    const stopped = consumer.stop({ deadlineMs: 5000 });
    for (const r of release.splice(0)) r();
    await vi.advanceTimersByTimeAsync(0);
    await stopped;
    const deleted = calls.filter((c) => c.name === 'DeleteMessageBatch').flatMap((c) => (c.input.Entries as { ReceiptHandle: string }[]).map((e) => e.ReceiptHandle));
    expect(deleted.sort()).toEqual(['rh-0', 'rh-1', 'rh-2', 'rh-3']);
    expect(handled).toHaveLength(4);
    expect(consumer.inFlightCount).toBe(0);
  });
});

describe('dedupe set', () => {
  it('forgets the least recently used id beyond its size and any id past its TTL', () => {
    let now = 0;
    const set = createDedupeSet({ maxEntries: 2, ttlMs: 1000, now: () => now });
    set.add('a');
    set.add('b');
    expect(set.has('a')).toBe(true); // touches a: b is now the oldest
    set.add('c');
    expect(set.has('b')).toBe(false);
    expect(set.has('a')).toBe(true);
    expect(set.has('c')).toBe(true);
    now = 1001;
    expect(set.has('a')).toBe(false);
    expect(set.size).toBe(1);
  });
});
