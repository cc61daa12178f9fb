// FIFO queues on a fake client: every send carries a MessageGroupId and a deduplication id and
// never a per-message delay (FIFO queues refuse one), a delay travels as `cr-not-before` and
// the consumer hides such a message until due; quarantine copies keep the group. Plus the
// option checks of producer and consumer (regression: "redaction jobs sent to a .fifo queue
// without a MessageGroupId and with a per-message DelaySeconds").
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isRelayError } from '../../../services/core/errors/relayError.ts';
import { createConsumer, type ConsumerOptions } from '../../../services/core/transport/consumer.ts';
import { createProducer } from '../../../services/core/transport/producer.ts';
import { fakeClient, hang, type Call } from './fakeClient.ts';
import { testQueue, wireAttributes } from './helpers.ts';

type Entry = { Id: string; MessageBody?: string; MessageGroupId?: string; MessageDeduplicationId?: string; DelaySeconds?: number; MessageAttributes?: Record<string, { StringValue?: string }> };
const entriesOf = (call: Call): Entry[] => call.input.Entries as Entry[];
const allOk = (call: Call): unknown => ({ Successful: entriesOf(call).map((e) => ({ Id: e.Id, MessageId: `sqs-${e.Id}` })) });

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('producer on a FIFO queue', () => {
  it('redaction jobs: each its own group, deduplicated by id, and a delay as cr-not-before instead of DelaySeconds', async () => {
    const { client, calls } = fakeClient(async (call) => allOk(call));
    const queue = testQueue('http://sqs.local/000/app-sms-redaction.fifo', { logical: 'app-sms-redaction', fifo: true });
    const producer = createProducer({ client, queue });
    const sent = producer.sendBatch([
      { id: 'SM1:fallback:t', body: '{}', delaySeconds: 900 },
      { id: 'SM1:status:t', body: '{}' },
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect((await sent).every((r) => r.ok)).toBe(true);
    const [fallback, status] = entriesOf(calls[0]!);
    expect(fallback).toMatchObject({ MessageGroupId: 'SM1:fallback:t', MessageDeduplicationId: 'SM1:fallback:t' });
    expect(fallback).not.toHaveProperty('DelaySeconds');
    expect(fallback!.MessageAttributes?.['cr-not-before']?.StringValue).toBe(String(Date.parse('2026-01-01T00:15:00Z')));
    expect(status).toMatchObject({ MessageGroupId: 'SM1:status:t', MessageDeduplicationId: 'SM1:status:t' });
    expect(status!.MessageAttributes).toBeUndefined();
  });

  it('chart updates: one group per ordering key (kept in order per record), deduplicated by envelope id', async () => {
    const { client, calls } = fakeClient(async (call) => allOk(call));
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/app-to-interface.fifo', { logical: 'app-to-interface', fifo: true }) });
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const keys = ['7', '7', undefined];
    const sent = Promise.all(ids.map((id, i) => producer.send({ id, body: 'x', attributes: wireAttributes(id), ...(keys[i] === undefined ? {} : { orderingKey: keys[i] }) })));
    await vi.advanceTimersByTimeAsync(0);
    await sent;
    expect(entriesOf(calls[0]!).map((e) => [e.MessageGroupId, e.MessageDeduplicationId])).toEqual([
      ['app-to-interface-7', ids[0]],
      ['app-to-interface-7', ids[1]],
      ['app-to-interface', ids[2]],
    ]);
  });

  it('on a standard queue a delay stays DelaySeconds and no group is set', async () => {
    const { client, calls } = fakeClient(async (call) => allOk(call));
    const producer = createProducer({ client, queue: testQueue('http://sqs.local/000/app-sms-redaction', { logical: 'app-sms-redaction' }) });
    const sent = producer.send({ id: 'SM2:fallback:t', body: '{}', delaySeconds: 60 });
    await vi.advanceTimersByTimeAsync(0);
    await sent;
    const [entry] = entriesOf(calls[0]!);
    expect(entry).toMatchObject({ DelaySeconds: 60 });
    expect(entry).not.toHaveProperty('MessageGroupId');
    expect(entry!.MessageAttributes).toBeUndefined();
  });
});

describe('consumer on a FIFO queue', () => {
  function consumerOf(message: Record<string, unknown>, handler: ConsumerOptions['handler']) {
    let delivered = false;
    const { client, calls } = fakeClient(async (call, signal) => {
      if (call.name === 'ReceiveMessage') {
        if (delivered) return hang(signal);
        delivered = true;
        return { Messages: [{ MessageId: 'm-1', ReceiptHandle: 'rh-1', Body: 'body-1', Attributes: { ApproximateReceiveCount: '1' }, ...message }] };
      }
      if (call.name === 'SendMessage') return {};
      return allOk(call);
    });
    const queue = testQueue('http://sqs.local/000/interface-to-app.fifo', { logical: 'interface-to-app', fifo: true });
    return { consumer: createConsumer({ client, queue, handler, random: () => 1 }), calls };
  }

  it('hides a message that is not due yet for the time left, without handing it to the handler', async () => {
    const handler = vi.fn(async () => ({ status: 'done' as const }));
    const notBefore = String(Date.now() + 120_500);
    const { consumer, calls } = consumerOf({ MessageAttributes: { 'cr-not-before': { DataType: 'String', StringValue: notBefore } } }, handler);
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(handler).not.toHaveBeenCalled();
    const change = calls.find((c) => c.name === 'ChangeMessageVisibilityBatch');
    expect((change!.input.Entries as Array<{ VisibilityTimeout: number }>)[0]!.VisibilityTimeout).toBe(121);
    expect(calls.some((c) => c.name === 'DeleteMessageBatch')).toBe(false);
    const stopped = consumer.stop({ deadlineMs: 10 });
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
  });

  it('hands a due message (or one with a malformed cr-not-before) to the handler', async () => {
    for (const value of [String(Date.now() - 1), 'soon']) {
      const handler = vi.fn(async () => ({ status: 'done' as const }));
      const { consumer } = consumerOf({ MessageAttributes: { 'cr-not-before': { DataType: 'String', StringValue: value } } }, handler);
      consumer.start();
      await vi.advanceTimersByTimeAsync(0);
      expect(handler).toHaveBeenCalledTimes(1);
      const stopped = consumer.stop({ deadlineMs: 10 });
      await vi.advanceTimersByTimeAsync(10);
      await stopped;
    }
  });

  it('receives an ordered queue one message at a time (SQS would hand over up to 10 of its one group, handled side by side)', async () => {
    const received: number[] = [];
    for (const [logical, fifo] of [['app-to-interface', true], ['app-to-interface', false], ['interface-to-app', true]] as const) {
      const { client, calls } = fakeClient(async (call, signal) => (call.name === 'ReceiveMessage' ? hang(signal) : allOk(call)));
      const queue = testQueue(`http://sqs.local/000/${logical}${fifo ? '.fifo' : ''}`, { logical, fifo });
      const consumer = createConsumer({ client, queue, handler: async () => ({ status: 'done' }), maxInFlight: 8 });
      consumer.start();
      await vi.advanceTimersByTimeAsync(0);
      received.push(calls.find((c) => c.name === 'ReceiveMessage')!.input.MaxNumberOfMessages as number);
      const stopped = consumer.stop({ deadlineMs: 10 });
      await vi.advanceTimersByTimeAsync(10);
      await stopped;
    }
    expect(received).toEqual([1, 8, 8]);
  });

  it('holds up to maxInFlight messages of an ordered queue, each from its own receive, so other groups pass one being retried', async () => {
    let n = 0;
    const { client, calls } = fakeClient(async (call, signal) => {
      if (call.name !== 'ReceiveMessage') return allOk(call);
      if (n >= 5) return hang(signal);
      n++;
      return { Messages: [{ MessageId: `m-${n}`, ReceiptHandle: `rh-${n}`, Body: `body-${n}`, Attributes: { ApproximateReceiveCount: '1', MessageGroupId: `app-to-interface-${n}` } }] };
    });
    const handled: string[] = [];
    const queue = testQueue('http://sqs.local/000/app-to-interface.fifo', { logical: 'app-to-interface', fifo: true });
    const consumer = createConsumer({ client, queue, maxInFlight: 3, handler: async (m, signal) => (handled.push(m.messageId), hang(signal)) });
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(handled).toEqual(['m-1', 'm-2', 'm-3']);
    expect(calls.filter((c) => c.name === 'ReceiveMessage').every((c) => c.input.MaxNumberOfMessages === 1)).toBe(true);
    const stopped = consumer.stop({ deadlineMs: 10 });
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
  });

  it('copies a quarantined message with its own group and the envelope id as deduplication id', async () => {
    const id = randomUUID();
    const { consumer, calls } = consumerOf(
      { MessageAttributes: wireAttributes(id), Attributes: { ApproximateReceiveCount: '1', MessageGroupId: 'g-original' } },
      async () => ({ status: 'quarantine', reason: 'CR_TEST' }),
    );
    consumer.start();
    await vi.advanceTimersByTimeAsync(0);
    const copy = calls.find((c) => c.name === 'SendMessage');
    expect(copy!.input).toMatchObject({ QueueUrl: 'http://sqs.local/000/interface-to-app.fifo-quarantine', MessageGroupId: 'g-original', MessageDeduplicationId: id });
    const stopped = consumer.stop({ deadlineMs: 10 });
    await vi.advanceTimersByTimeAsync(10);
    await stopped;
  });
});

describe('producer and consumer options are checked, not clamped', () => {
  const { client } = fakeClient(async () => ({}));
  const queue = testQueue('http://sqs.local/000/q');
  const handler: ConsumerOptions['handler'] = async () => ({ status: 'done' });

  it.each([
    [{ batchSize: 0 }, /consumer option batchSize: expected an integer from 1 to 10, got 0/],
    [{ batchSize: 11 }, /consumer option batchSize: expected an integer from 1 to 10, got 11/],
    [{ maxInFlight: 0 }, /consumer option maxInFlight: expected an integer at least 1, got 0/],
    [{ waitTimeSeconds: 21 }, /consumer option waitTimeSeconds: expected an integer from 0 to 20, got 21/],
    [{ visibilityTimeoutSeconds: 50_000 }, /consumer option visibilityTimeoutSeconds: expected an integer from 1 to 43200, got 50000/],
    [{ heartbeatIntervalSeconds: 0 }, /consumer option heartbeatIntervalSeconds: expected a number above 0, got 0/],
    [{ lingerMs: -1 }, /consumer option lingerMs: expected a number of at least 0, got -1/],
  ])('consumer %o throws CR_TRANSPORT_INVALID_OPTION naming it', (bad, message) => {
    let err: unknown;
    try {
      createConsumer({ client, queue, handler, ...bad });
    } catch (e) {
      err = e;
    }
    expect(isRelayError(err, 'CR_TRANSPORT_INVALID_OPTION')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });

  it.each([
    [{ maxAttempts: 0 }, /producer option maxAttempts: expected an integer at least 1, got 0/],
    [{ retryBaseMs: 100, retryMaxMs: 50 }, /producer option retryMaxMs: expected a number of at least 100, got 50/],
    [{ lingerMs: Number.NaN }, /producer option lingerMs: expected a number of at least 0, got NaN/],
  ])('producer %o throws CR_TRANSPORT_INVALID_OPTION naming it', (bad, message) => {
    expect(() => createProducer({ client, queue, ...bad })).toThrow(message);
  });

  it('a queue that was not resolved (a bare URL) is refused', () => {
    expect(() => createProducer({ client, queue: { url: 'http://sqs.local/000/q' } as never })).toThrow(/producer option queue: expected a resolved queue/);
  });
});
