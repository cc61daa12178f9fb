// Coalescing of producer sends and consumer deletes/visibility changes into SQS batch calls,
// and the release of a held message's ciphertext. A fake client counts every call; fake timers
// drive the linger and the backoff, so nothing here depends on wall-clock timing.
import { writeHeapSnapshot } from 'node:v8';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMetrics } from '../../../services/core/metrics/registry.ts';
import { createConsumer, type Consumer, type ConsumerOptions, type HandlerResult } from '../../../services/core/transport/consumer.ts';
import { createProducer, SQS_MAX_MESSAGE_BYTES, type OutgoingMessage } from '../../../services/core/transport/producer.ts';
import { captureLogger, counterValue, testQueue, wireAttributes } from './helpers.ts';
import { fakeClient, hang, type Call } from './fakeClient.ts';

type Entries = { Id: string; MessageBody?: string; ReceiptHandle?: string; VisibilityTimeout?: number }[];
const entriesOf = (call: Call): Entries => call.input.Entries as Entries;
const named = (calls: Call[], name: string): Call[] => calls.filter((c) => c.name === name);

/** Answers every entry of a batch call as successful. */
const allOk = (call: Call): unknown => ({ Successful: entriesOf(call).map((e) => ({ Id: e.Id, MessageId: `sqs-${e.Id}-${e.MessageBody ?? ''}` })) });

const message = (body: string): OutgoingMessage => {
  const id = randomUUID();
  return { id, body, attributes: wireAttributes(id) };
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('producer: concurrent sends coalesce into SendMessageBatch', () => {
  it('ten concurrent sends make one call of ten entries, thirteen make two; each caller gets its own message id', async () => {
    const { client, calls } = fakeClient(async (call) => allOk(call));
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/q') });
    const ten = Array.from({ length: 10 }, (_, i) => message(`b${i}`));
    const sent = Promise.all(ten.map((m) => producer.send(m)));
    await vi.advanceTimersByTimeAsync(0);
    const results = await sent;
    expect(named(calls, 'SendMessageBatch')).toHaveLength(1);
    expect(entriesOf(calls[0]!).map((e) => e.MessageBody)).toEqual(ten.map((m) => m.body));
    // Each caller's answer comes from its own entry.
    results.forEach((r, i) => expect(r).toEqual({ id: ten[i]!.id, messageId: expect.stringMatching(new RegExp(`-b${i}$`)) }));

    calls.length = 0;
    const thirteen = Array.from({ length: 13 }, (_, i) => message(`c${i}`));
    const sent13 = Promise.all(thirteen.map((m) => producer.send(m)));
    await vi.advanceTimersByTimeAsync(0);
    await sent13;
    expect(named(calls, 'SendMessageBatch').map((c) => entriesOf(c).length)).toEqual([10, 3]);
  });

  it('resolves only once SQS answered, and sends alone when no other send comes within the linger', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { client, calls } = fakeClient(async (call) => {
      await gate;
      return allOk(call);
    });
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/q') });
    let done = false;
    const p = producer.send(message('alone')).then((r) => {
      done = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(named(calls, 'SendMessageBatch')).toHaveLength(1);
    expect(done).toBe(false); // SQS has not answered: not accepted yet
    release();
    await p;
    expect(done).toBe(true);
  });

  it('keeps a batch within 1 MiB: two messages of 600 KB go in two calls', async () => {
    const { client, calls } = fakeClient(async (call) => allOk(call));
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/q') });
    const big = 'x'.repeat(600_000);
    const sent = Promise.all([producer.send(message(big)), producer.send(message(big))]);
    await vi.advanceTimersByTimeAsync(0);
    await sent;
    expect(named(calls, 'SendMessageBatch').map((c) => entriesOf(c).length)).toEqual([1, 1]);
  });

  it('a message over 1 MiB is refused at once with CR_TRANSPORT_MESSAGE_TOO_LARGE, without a call, and does not hold up others', async () => {
    const { client, calls } = fakeClient(async (call) => allOk(call));
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/q') });
    const tooBig = producer.send(message('x'.repeat(SQS_MAX_MESSAGE_BYTES + 1)));
    const fine = producer.send(message('fine'));
    await expect(tooBig).rejects.toMatchObject({ code: 'CR_TRANSPORT_MESSAGE_TOO_LARGE', status: 413 });
    await vi.advanceTimersByTimeAsync(0);
    await expect(fine).resolves.toMatchObject({ messageId: expect.any(String) });
    expect(named(calls, 'SendMessageBatch').map((c) => entriesOf(c).length)).toEqual([1]);
  });

  it('a refused entry rejects only its own caller; a transient one is retried alone, then reported', async () => {
    const metrics = createMetrics('t', { defaultMetrics: false });
    const log = captureLogger();
    // m1 is refused for good (sender fault); m2 fails transiently on every attempt; the rest succeed.
    const { client, calls } = fakeClient(async (call) => {
      const entries = entriesOf(call);
      const refused = entries.filter((e) => e.MessageBody === 'refused');
      const flaky = entries.filter((e) => e.MessageBody === 'flaky');
      return {
        Successful: entries.filter((e) => !refused.includes(e) && !flaky.includes(e)).map((e) => ({ Id: e.Id, MessageId: `sqs-${e.MessageBody}` })),
        Failed: [
          ...refused.map((e) => ({ Id: e.Id, Code: 'InvalidMessageContents', SenderFault: true })),
          ...flaky.map((e) => ({ Id: e.Id, Code: 'ServiceUnavailable', SenderFault: false })),
        ],
      };
    });
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/q'), metrics, logger: log.logger, maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 1000 });
    const bodies = ['ok-a', 'refused', 'flaky', 'ok-b'];
    const settled = bodies.map((b) => producer.send(message(b)).then((r) => ({ ok: true as const, r }), (err: unknown) => ({ ok: false as const, err })));
    await vi.advanceTimersByTimeAsync(0);
    // The good ones and the refused one are settled after the first call, without waiting for the retries.
    expect(named(calls, 'SendMessageBatch')).toHaveLength(1);
    const [a, refused, , b] = await Promise.all([settled[0]!, settled[1]!, Promise.resolve(), settled[3]!]);
    expect(a).toMatchObject({ ok: true, r: { messageId: 'sqs-ok-a' } });
    expect(b).toMatchObject({ ok: true, r: { messageId: 'sqs-ok-b' } });
    expect(refused).toMatchObject({ ok: false, err: { code: 'CR_TRANSPORT_SEND_FAILED', details: { sqsCode: 'InvalidMessageContents' } } });

    await vi.advanceTimersByTimeAsync(5000);
    const flaky = await settled[2]!;
    expect(flaky).toMatchObject({ ok: false, err: { code: 'CR_TRANSPORT_SEND_FAILED', status: 503, details: { sqsCode: 'ServiceUnavailable' } } });
    // Attempts 2 and 3 carried the flaky entry alone.
    expect(named(calls, 'SendMessageBatch').map((c) => entriesOf(c).map((e) => e.MessageBody))).toEqual([bodies, ['flaky'], ['flaky']]);
    expect(await counterValue(metrics.transport.sent, { queue: 'q' })).toBe(2);
    expect(await counterValue(metrics.transport.sendFailures, { queue: 'q' })).toBe(2);
    expect(log.lines().filter((l) => l.msg === 'message not sent')).toHaveLength(2);
    expect(log.raw()).not.toContain('ok-a');
  });

  it('a failed call (SQS unreachable) is retried for all its entries; they resolve once it works', async () => {
    let attempt = 0;
    const { client, calls } = fakeClient(async (call) => {
      if (++attempt === 1) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return allOk(call);
    });
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/q'), retryBaseMs: 100 });
    const sent = Promise.all([producer.send(message('x1')), producer.send(message('x2'))]);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(sent).resolves.toHaveLength(2);
    expect(named(calls, 'SendMessageBatch').map((c) => entriesOf(c).length)).toEqual([2, 2]);
  });
});

const QUEUE = 'http://sqs.local/000/q';

/** A consumer on a fake client that delivers `count` messages once, then long-polls forever. */
function consumerWith(count: number, handler: ConsumerOptions['handler'], answer: (call: Call) => unknown, extra: Partial<ConsumerOptions> = {}): { consumer: Consumer; calls: Call[] } {
  let delivered = false;
  const { client, calls } = fakeClient(async (call, signal) => {
    if (call.name === 'ReceiveMessage') {
      if (delivered) return hang(signal);
      delivered = true;
      return {
        Messages: Array.from({ length: count }, (_, i) => ({
          MessageId: `id-${i}`,
          ReceiptHandle: `rh-${i}`,
          Body: `body-${i}`,
          MessageAttributes: wireAttributes(),
          Attributes: { ApproximateReceiveCount: '1' },
        })),
      };
    }
    return answer(call);
  });
  const consumer = createConsumer({ client, queue: testQueue(QUEUE, { logical: 'q' }), random: () => 1, ...extra, handler });
  return { consumer, calls };
}

async function stop(consumer: Consumer): Promise<void> {
  const stopped = consumer.stop({ deadlineMs: 100 });
  await vi.advanceTimersByTimeAsync(100);
  await stopped;
}

describe('consumer: deletes and visibility changes coalesce', () => {
  it('ten messages done make one DeleteMessageBatch of ten; each handler learns its own delete happened', async () => {
    const deleted: boolean[] = [];
    const { consumer, calls } = consumerWith(10, async () => ({ status: 'done', onDeleted: (d) => void deleted.push(d) }), (call) => allOk(call));
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    const deletes = named(calls, 'DeleteMessageBatch');
    expect(deletes).toHaveLength(1);
    expect(entriesOf(deletes[0]!).map((e) => e.ReceiptHandle).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `rh-${i}`).sort());
    expect(named(calls, 'DeleteMessage')).toHaveLength(0);
    expect(deleted).toEqual(Array(10).fill(true));
    expect(consumer.inFlightCount).toBe(0);
    await stop(consumer);
  });

  it('a failed delete entry is retried alone, then counted and logged; the others are deleted at once', async () => {
    const metrics = createMetrics('t', { defaultMetrics: false });
    const log = captureLogger();
    const outcome = new Map<string, boolean>();
    const { consumer, calls } = consumerWith(
      4,
      async (m) => ({ status: 'done', onDeleted: (d) => void outcome.set(m.messageId, d) }),
      (call) => {
        const entries = entriesOf(call);
        const bad = entries.filter((e) => e.ReceiptHandle === 'rh-2');
        return { Successful: entries.filter((e) => !bad.includes(e)).map((e) => ({ Id: e.Id })), Failed: bad.map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false })) };
      },
      { metrics, logger: log.logger },
    );
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(outcome).toEqual(new Map([['id-0', true], ['id-1', true], ['id-3', true]]));
    await vi.advanceTimersByTimeAsync(5000);
    expect(outcome.get('id-2')).toBe(false);
    // Three attempts in all, the retries carrying only the failed entry.
    expect(named(calls, 'DeleteMessageBatch').map((c) => entriesOf(c).map((e) => e.ReceiptHandle))).toEqual([['rh-0', 'rh-1', 'rh-2', 'rh-3'], ['rh-2'], ['rh-2']]);
    expect(await counterValue(metrics.transport.deleteFailures, { queue: 'q' })).toBe(1);
    expect(log.lines().filter((l) => l.msg === 'delete failed; the message will be redelivered')).toEqual([expect.objectContaining({ messageId: 'id-2', code: 'InternalError' })]);
    await stop(consumer);
  });

  it('a stale receipt handle is not retried; an entry SQS does not mention is not assumed deleted', async () => {
    const metrics = createMetrics('t', { defaultMetrics: false });
    const outcome = new Map<string, boolean>();
    const { consumer, calls } = consumerWith(
      3,
      async (m) => ({ status: 'done', onDeleted: (d) => void outcome.set(m.messageId, d) }),
      (call) => {
        const entries = entriesOf(call);
        return {
          Successful: entries.filter((e) => e.ReceiptHandle === 'rh-0').map((e) => ({ Id: e.Id })),
          Failed: entries.filter((e) => e.ReceiptHandle === 'rh-1').map((e) => ({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', SenderFault: true })),
          // rh-2: no answer at all
        };
      },
      { metrics },
    );
    consumer.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(outcome).toEqual(new Map([['id-0', true], ['id-1', false], ['id-2', false]]));
    expect(named(calls, 'DeleteMessageBatch').map((c) => entriesOf(c).map((e) => e.ReceiptHandle))).toEqual([['rh-0', 'rh-1', 'rh-2'], ['rh-2'], ['rh-2']]);
    expect(await counterValue(metrics.transport.deleteFailures, { queue: 'q' })).toBe(2);
    await stop(consumer);
  });

  it('retries and releases leave in one ChangeMessageVisibilityBatch, each entry with its own timeout; a failed entry is counted', async () => {
    const metrics = createMetrics('t', { defaultMetrics: false });
    const { consumer, calls } = consumerWith(
      3,
      async (m): Promise<HandlerResult> => (m.messageId === 'id-1' ? { status: 'release' } : { status: 'retry', reason: 'CR_TEST', afterSeconds: 7 }),
      (call) => {
        const entries = entriesOf(call);
        return { Successful: entries.filter((e) => e.ReceiptHandle !== 'rh-2').map((e) => ({ Id: e.Id })), Failed: entries.filter((e) => e.ReceiptHandle === 'rh-2').map((e) => ({ Id: e.Id, Code: 'InternalError', SenderFault: false })) };
      },
      { metrics },
    );
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    const changes = named(calls, 'ChangeMessageVisibilityBatch');
    expect(changes).toHaveLength(1);
    expect(Object.fromEntries(entriesOf(changes[0]!).map((e) => [e.ReceiptHandle, e.VisibilityTimeout]))).toEqual({ 'rh-0': 7, 'rh-1': 0, 'rh-2': 7 });
    expect(await counterValue(metrics.transport.visibilityFailures, { queue: 'q' })).toBe(1);
    await stop(consumer);
  });
});

describe('releasing the body of a held message', () => {
  it('a quarantine asked after releaseBody() becomes a retry: nothing is copied or deleted', async () => {
    const log = captureLogger();
    const { consumer, calls } = consumerWith(
      1,
      async (m): Promise<HandlerResult> => {
        m.releaseBody?.();
        expect(m.body).toBe('');
        expect(m.attributes).toEqual({});
        return { status: 'quarantine', reason: 'CR_ENVELOPE_SIGNATURE_INVALID' };
      },
      (call) => allOk(call),
      { logger: log.logger, retryBaseSeconds: 2, retryMaxSeconds: 2 },
    );
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(named(calls, 'SendMessage')).toHaveLength(0);
    expect(named(calls, 'DeleteMessageBatch')).toHaveLength(0);
    const changes = named(calls, 'ChangeMessageVisibilityBatch');
    expect(changes.flatMap((c) => entriesOf(c).map((e) => [e.ReceiptHandle, e.VisibilityTimeout]))).toEqual([['rh-0', 2]]);
    expect(log.lines().some((l) => l.msg === 'quarantine asked after the body was released; retrying later instead')).toBe(true);
    await stop(consumer);
  });

  it('a dead-letter without release still copies the body as received', async () => {
    const { consumer, calls } = consumerWith(1, async () => ({ status: 'dead-letter', reason: 'CR_TEST' }), (call) => (call.name === 'SendMessage' ? {} : allOk(call)));
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    const copies = named(calls, 'SendMessage');
    expect(copies.map((c) => [c.input.QueueUrl, c.input.MessageBody])).toEqual([[`${QUEUE}-dlq`, 'body-0']]);
    expect(named(calls, 'DeleteMessageBatch')).toHaveLength(1);
    await stop(consumer);
  });

  it('once released, the held message no longer references its ciphertext (heap snapshot)', async () => {
    vi.useRealTimers();
    // A unique ciphertext built at run time, so that no source text holds it.
    const marker = () => `CIPHERTEXT-${randomBytes(16).toString('hex')}`;
    const bodies = [marker(), marker()];
    let received = 0;
    const held: Array<() => void> = [];
    const { client } = fakeClient(async (call, signal) => {
      if (call.name !== 'ReceiveMessage') return allOk(call);
      if (received > 0) return hang(signal);
      received++;
      const messages = bodies.map((Body, i) => ({ MessageId: `id-${i}`, ReceiptHandle: `rh-${i}`, Body, Attributes: { ApproximateReceiveCount: '1' } }));
      bodies.length = 0;
      return { Messages: messages };
    });
    // Bytes, not strings: a copy kept as a string would itself be found in the snapshot.
    const seen: Buffer[] = [];
    const consumer = createConsumer({
      client,
      queue: testQueue(QUEUE),
      heartbeatIntervalSeconds: 3600,
      // id-0 is held after releasing its body (as the inbox does); id-1 is held with it.
      handler: (m) =>
        new Promise<HandlerResult>((resolve) => {
          seen.push(Buffer.from(m.body, 'utf8'));
          if (m.messageId === 'id-0') m.releaseBody?.();
          held.push(() => resolve({ status: 'done' }));
        }),
    });
    consumer.start();
    const until = Date.now() + 5000;
    while (held.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(held).toHaveLength(2);
    const file = join(tmpdir(), `held-${process.pid}-${Date.now()}.heapsnapshot`);
    writeHeapSnapshot(file);
    const snapshot = await readFile(file, 'utf8');
    await rm(file, { force: true });
    expect(snapshot.includes(seen[1]!.toString('utf8'))).toBe(true); // the check can see a held body...
    expect(snapshot.includes(seen[0]!.toString('utf8'))).toBe(false); // ...and the released one is gone
    for (const settle of held) settle();
    await consumer.stop({ deadlineMs: 1000 });
  });
});
