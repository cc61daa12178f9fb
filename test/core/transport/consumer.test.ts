import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../../services/core/metrics/registry.ts';
import { attributeString, checkWireAttributes, stringAttribute } from '../../../services/core/transport/attributes.ts';
import { createConsumer, type Consumer, type ConsumerOptions, type ReceivedMessage } from '../../../services/core/transport/consumer.ts';
import { createDedupeSet } from '../../../services/core/transport/dedupe.ts';
import { ensureQueues, type EnsuredQueue } from '../../../services/core/transport/queues.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { captureLogger, countCalls, counterValue, deleteQueues, depth, memoryAudit, put, take, takeAtLeast, waitFor, wireAttributes } from './helpers.ts';

let sqs: TestSqs;
let n = 0;
const running: Consumer[] = [];
beforeAll(async () => {
  sqs = await startTestSqs();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop({ deadlineMs: 500 })));
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
});

async function freshQueue(): Promise<EnsuredQueue> {
  const { 'interface-to-app': q } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}c${n++}-`, queues: ['interface-to-app'] });
  return q;
}

function consumer(q: EnsuredQueue, handler: ConsumerOptions['handler'], extra: Partial<ConsumerOptions> = {}): Consumer {
  const c = createConsumer({
    client: sqs.client,
    queue: q,
    service: 'app',
    waitTimeSeconds: 1,
    handler,
    ...extra,
  });
  running.push(c);
  c.start();
  return c;
}

const secretBody = (): string => `-----BEGIN PGP MESSAGE----- patient Jane Doe ${randomUUID()}`;

describe('consumer results', () => {
  it('done: hands the message over with its attributes, deletes it and logs no body', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('app', { defaultMetrics: false });
    const log = captureLogger();
    const id = randomUUID();
    const body = secretBody();
    await put(sqs.client, q.url, body, wireAttributes(id));
    const seen: ReceivedMessage[] = [];
    const c = consumer(q, async (m) => {
      seen.push(m);
      return { status: 'done' };
    }, { metrics, logger: log.logger });
    await waitFor(async () => (await counterValue(metrics.transport.done, { queue: 'interface-to-app' })) === 1 && c.inFlightCount === 0, 5000, 'done');
    expect(seen[0]).toMatchObject({ body, envelopeId: id, receiveCount: 1, queue: 'interface-to-app' });
    expect(checkWireAttributes(seen[0]!.attributes)).toMatchObject({ ok: true, envelopeId: id });
    expect(await depth(sqs.client, q.url)).toEqual({ visible: 0, inFlight: 0 });
    expect(log.raw()).not.toContain('Jane');
    expect(c.ready()).toBe(true);
  });

  it('retry: the message comes back after the requested delay with a higher receive count', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('app', { defaultMetrics: false });
    const counts: number[] = [];
    const times: number[] = [];
    consumer(q, async (m) => {
      counts.push(m.receiveCount);
      times.push(Date.now());
      return counts.length === 1 ? { status: 'retry', reason: 'CR_TEST_BUSY', afterSeconds: 1 } : { status: 'done' };
    }, { metrics });
    await put(sqs.client, q.url, secretBody());
    await waitFor(() => counts.length === 2, 8000, 'second delivery');
    expect(counts).toEqual([1, 2]);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(900);
    expect(await counterValue(metrics.transport.retried, { queue: 'interface-to-app' })).toBe(1);
  });

  it('a handler that throws is a transient retry, logged with its code only', async () => {
    const q = await freshQueue();
    const log = captureLogger();
    let calls = 0;
    consumer(q, async () => {
      if (++calls === 1) throw Object.assign(new Error('cannot parse MRN 12345 for Jane'), { code: 'E_TEST_PARSE' });
      return { status: 'done' };
    }, { logger: log.logger, retryBaseSeconds: 1, random: () => 0 });
    await put(sqs.client, q.url, secretBody());
    await waitFor(() => calls === 2, 8000, 'redelivery after a throw');
    const line = log.lines().find((l) => l.msg === 'handler threw; will retry');
    expect(line).toMatchObject({ code: 'E_TEST_PARSE', queue: 'interface-to-app' });
    expect(log.raw()).not.toContain('MRN');
    expect(log.raw()).not.toContain('Jane');
  });

  it('quarantine: copies the ciphertext and attributes with the reason, deletes, audits and counts', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('app', { defaultMetrics: false });
    const audit = memoryAudit();
    const id = randomUUID();
    const body = secretBody();
    await put(sqs.client, q.url, body, wireAttributes(id));
    consumer(q, async () => ({ status: 'quarantine', reason: 'CR_ENVELOPE_SIGNATURE_INVALID' }), { metrics, audit });
    const [copy] = await takeAtLeast(sqs.client, q.quarantineUrl, 1);
    expect(copy!.Body).toBe(body);
    const attrs = copy!.MessageAttributes!;
    expect(attrs['cr-envelope-id']?.StringValue).toBe(id);
    expect(attrs['cr-version']?.StringValue).toBe('1');
    expect(attrs['cr-signer']?.StringValue).toBe('ABCDEF0123456789');
    expect(attrs['cr-reason']?.StringValue).toBe('CR_ENVELOPE_SIGNATURE_INVALID');
    expect(attrs['cr-source-queue']?.StringValue).toBe('interface-to-app');
    expect(Number.isNaN(Date.parse(attrs['cr-quarantined-at']!.StringValue!))).toBe(false);
    await waitFor(async () => (await depth(sqs.client, q.url)).inFlight === 0 && audit.events.length === 1, 5000, 'delete and audit');
    expect(await depth(sqs.client, q.url)).toEqual({ visible: 0, inFlight: 0 });
    expect(audit.events[0]).toEqual({
      action: 'message.quarantined',
      actor: 'app',
      resourceType: 'sqs-message',
      resourceId: id,
      outcome: 'success',
      details: { queue: 'interface-to-app', reason: 'CR_ENVELOPE_SIGNATURE_INVALID' },
    });
    expect(await counterValue(metrics.transport.quarantined, { queue: 'interface-to-app', reason: 'CR_ENVELOPE_SIGNATURE_INVALID' })).toBe(1);
  });

  it('quarantine of a message without an envelope id audits the SQS message id, and free-text reasons are replaced', async () => {
    const q = await freshQueue();
    const audit = memoryAudit();
    await put(sqs.client, q.url, 'not even pgp', { 'cr-version': stringAttribute('9') });
    let messageId = '';
    consumer(q, async (m) => {
      messageId = m.messageId;
      expect(checkWireAttributes(m.attributes)).toEqual({ ok: false, reason: 'CR_TRANSPORT_UNSUPPORTED_VERSION' });
      return { status: 'quarantine', reason: 'bad message for patient Jane Doe' };
    }, { audit });
    const [copy] = await takeAtLeast(sqs.client, q.quarantineUrl, 1);
    expect(copy!.MessageAttributes!['cr-reason']?.StringValue).toBe('CR_REASON_INVALID');
    await waitFor(() => audit.events.length === 1, 5000, 'audit');
    expect(audit.events[0]).toMatchObject({ resourceId: messageId, details: { reason: 'CR_REASON_INVALID' } });
  });

  it('dead-letter: copies to the DLQ with the reason, deletes, audits and counts', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('app', { defaultMetrics: false });
    const audit = memoryAudit();
    const body = secretBody();
    await put(sqs.client, q.url, body);
    consumer(q, async () => ({ status: 'dead-letter', reason: 'CR_EMR_REJECTED' }), { metrics, audit });
    const [copy] = await takeAtLeast(sqs.client, q.dlqUrl, 1);
    expect(copy!.Body).toBe(body);
    expect(copy!.MessageAttributes!['cr-reason']?.StringValue).toBe('CR_EMR_REJECTED');
    await waitFor(async () => (await depth(sqs.client, q.url)).inFlight === 0 && audit.events.length === 1, 5000, 'delete and audit');
    expect(audit.events[0]?.action).toBe('message.dead-lettered');
    expect(await counterValue(metrics.transport.deadLettered, { queue: 'interface-to-app', reason: 'CR_EMR_REJECTED' })).toBe(1);
  });

  it('release: the message is visible again at once', async () => {
    const q = await freshQueue();
    const times: number[] = [];
    consumer(q, async () => {
      times.push(Date.now());
      return times.length === 1 ? { status: 'release' } : { status: 'done' };
    });
    await put(sqs.client, q.url, secretBody());
    await waitFor(() => times.length === 2, 5000, 'redelivery after release');
    expect(times[1]! - times[0]!).toBeLessThan(2000);
  });

  it('an invalid handler result is treated as a retry, never as done', async () => {
    const q = await freshQueue();
    let calls = 0;
    consumer(q, async () => (++calls === 1 ? ({ status: 'ok' } as never) : { status: 'done' }), { retryBaseSeconds: 1, random: () => 0 });
    await put(sqs.client, q.url, secretBody());
    await waitFor(() => calls === 2, 8000, 'redelivery');
  });
});

describe('batched acknowledgements', () => {
  it('deletes of messages done together share DeleteMessageBatch calls, and every one is really gone', async () => {
    const q = await freshQueue();
    await Promise.all(Array.from({ length: 10 }, () => put(sqs.client, q.url, secretBody())));
    const calls = countCalls(sqs.client);
    try {
      let handled = 0;
      consumer(q, async () => {
        handled++;
        return { status: 'done' };
      });
      await waitFor(async () => handled === 10 && (await depth(sqs.client, q.url)).inFlight === 0, 10_000, 'all deleted');
      expect(await depth(sqs.client, q.url)).toEqual({ visible: 0, inFlight: 0 });
      expect(calls.count('DeleteMessage')).toBe(0);
      // At most one delete call per receive that brought messages, never one per message.
      expect(calls.count('DeleteMessageBatch')).toBeGreaterThan(0);
      expect(calls.count('DeleteMessageBatch')).toBeLessThanOrEqual(calls.count('ReceiveMessage'));
      expect(calls.count('DeleteMessageBatch')).toBeLessThan(10);
    } finally {
      calls.stop();
    }
  });
});

describe('duplicates', () => {
  it('applies a repeated envelope id once: the duplicate is deleted, counted and audited without calling the handler', async () => {
    const q = await freshQueue();
    const metrics = createMetrics('app', { defaultMetrics: false });
    const audit = memoryAudit();
    const dedupe = createDedupeSet();
    const id = randomUUID();
    // Two copies in flight together (same batch) and a third after the first is done.
    await put(sqs.client, q.url, 'copy 1', wireAttributes(id));
    await put(sqs.client, q.url, 'copy 2', wireAttributes(id));
    let calls = 0;
    consumer(q, async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 100));
      return { status: 'done' };
    }, { metrics, audit, dedupe });
    await waitFor(async () => (await counterValue(metrics.transport.duplicates, { queue: 'interface-to-app' })) === 1, 5000, 'first duplicate');
    await put(sqs.client, q.url, 'copy 3', wireAttributes(id));
    await waitFor(async () => (await counterValue(metrics.transport.duplicates, { queue: 'interface-to-app' })) === 2, 5000, 'second duplicate');
    expect(calls).toBe(1);
    expect(dedupe.has(id)).toBe(true);
    await waitFor(async () => {
      const d = await depth(sqs.client, q.url);
      return d.visible === 0 && d.inFlight === 0;
    }, 5000, 'all copies deleted');
    expect(audit.events.map((e) => [e.action, e.resourceId])).toEqual([
      ['message.duplicate', id],
      ['message.duplicate', id],
    ]);
  });

  it('a failed first attempt lets the held copy be processed', async () => {
    const q = await freshQueue();
    const id = randomUUID();
    await put(sqs.client, q.url, 'copy 1', wireAttributes(id));
    await put(sqs.client, q.url, 'copy 2', wireAttributes(id));
    const bodies: string[] = [];
    consumer(q, async (m) => {
      bodies.push(m.body);
      return bodies.length === 1 ? { status: 'retry', reason: 'CR_TEST', afterSeconds: 30 } : { status: 'done' };
    }, { dedupe: createDedupeSet() });
    await waitFor(() => bodies.length === 2, 5000, 'second copy processed');
    expect(new Set(bodies)).toEqual(new Set(['copy 1', 'copy 2']));
  });
});

describe('backpressure', () => {
  it('stops receiving at maxInFlight: the rest wait in SQS until capacity frees', async () => {
    const q = await freshQueue();
    const metrics: Metrics = createMetrics('app', { defaultMetrics: false });
    for (let i = 0; i < 5; i++) await put(sqs.client, q.url, `m${i}`);
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let calls = 0;
    const c = consumer(q, async () => {
      calls++;
      await gate;
      return { status: 'done' };
    }, { maxInFlight: 2, metrics });
    await waitFor(() => c.inFlightCount === 2, 5000, 'two held');
    // Hold long enough for several long polls to have happened were the consumer still receiving.
    await new Promise((r) => setTimeout(r, 1500));
    expect(c.inFlightCount).toBe(2);
    expect(calls).toBe(2);
    expect(await counterValue(metrics.transport.received, { queue: 'interface-to-app' })).toBe(2);
    expect(await depth(sqs.client, q.url)).toEqual({ visible: 3, inFlight: 2 });
    open();
    await waitFor(async () => (await counterValue(metrics.transport.done, { queue: 'interface-to-app' })) === 5, 8000, 'all five done');
    expect(await take(sqs.client, q.url)).toEqual([]);
  });

  it('pause stops receiving and resume continues', async () => {
    const q = await freshQueue();
    let calls = 0;
    const c = consumer(q, async () => {
      calls++;
      return { status: 'done' };
    });
    c.pause();
    await put(sqs.client, q.url, 'waits');
    await new Promise((r) => setTimeout(r, 1200));
    expect(calls).toBe(0);
    expect(c.health()).toMatchObject({ running: true, paused: true });
    c.resume();
    await waitFor(() => calls === 1, 5000, 'processed after resume');
  });
});

// `retryAsNewMessage` (the SMS redaction queue's consumer): a retry sends the message again as a new
// one and deletes the one received, so that a handler that bounds its own retries (a window of hours)
// is not cut short by the queue's maxReceiveCount, whose redrive moves a message retried by
// visibility to the DLQ after that many receives.
/** A queue whose redrive moves a message to its DLQ after 2 receives. */
async function redriveQueue(fifo = false): Promise<EnsuredQueue> {
  const { 'app-sms-redaction': q } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}r${n++}-`, queues: ['app-sms-redaction'], maxReceiveCount: 2, fifo });
  return q;
}

/** A handler that asks for `retries` retries `afterSeconds` apart, then is done; every delivery it saw. */
function retrying(retries: number, afterSeconds: number) {
  const seen: ReceivedMessage[] = [];
  const handler: ConsumerOptions['handler'] = async (m) => {
    seen.push(m);
    return seen.length <= retries ? { status: 'retry', reason: 'in-progress', afterSeconds } : { status: 'done' };
  };
  return { seen, handler };
}

const job = (): string => JSON.stringify({ v: 1, sid: randomUUID(), trigger: 'fallback' });

describe('consumer: retryAsNewMessage', () => {
  it('without it, a message retried by visibility goes to the DLQ once it was received maxReceiveCount times', async () => {
    const q = await redriveQueue();
    const { seen, handler } = retrying(5, 0);
    consumer(q, handler);
    await put(sqs.client, q.url, job());
    await waitFor(async () => (await depth(sqs.client, q.dlqUrl)).visible === 1, 15_000, 'the message in the DLQ');
    expect(seen.map((m) => m.receiveCount)).toEqual([1, 2]);
  });

  it('retried five times on a queue that redrives after two receives: handled six times, each a first receive, the same body and attributes; nothing in the DLQ', async () => {
    const q = await redriveQueue();
    const { seen, handler } = retrying(5, 0);
    const body = job();
    const id = randomUUID();
    consumer(q, handler, { retryAsNewMessage: true });
    await put(sqs.client, q.url, body, wireAttributes(id));
    await waitFor(() => seen.length === 6, 15_000, 'six deliveries');
    expect(seen.map((m) => m.receiveCount)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(new Set(seen.map((m) => m.body))).toEqual(new Set([body]));
    expect(new Set(seen.map((m) => m.envelopeId))).toEqual(new Set([id]));
    expect(new Set(seen.map((m) => m.messageId)).size).toBe(6);
    await waitFor(async () => (await depth(sqs.client, q.url)).inFlight === 0, 5000, 'the last one deleted');
    expect(await depth(sqs.client, q.url)).toEqual({ visible: 0, inFlight: 0 });
    expect(await depth(sqs.client, q.dlqUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('the new message waits for the retry’s delay', async () => {
    const q = await redriveQueue();
    const { seen, handler } = retrying(1, 2);
    const times: number[] = [];
    consumer(q, async (m, s) => (times.push(Date.now()), handler(m, s)), { retryAsNewMessage: true });
    await put(sqs.client, q.url, job());
    await waitFor(() => seen.length === 2, 15_000, 'the second delivery');
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1900);
    expect(seen.map((m) => m.receiveCount)).toEqual([1, 1]);
  });

  it('on a FIFO queue: the new message keeps its group, waits for the delay (cr-not-before), and the DLQ stays empty', async () => {
    const q = await redriveQueue(true);
    const { seen, handler } = retrying(3, 1);
    consumer(q, handler, { retryAsNewMessage: true });
    const id = randomUUID();
    await sqs.client.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: job(), MessageAttributes: wireAttributes(id), MessageGroupId: 'g1', MessageDeduplicationId: id }));
    await waitFor(() => seen.length === 4, 20_000, 'four deliveries');
    expect(new Set(seen.map((m) => m.envelopeId))).toEqual(new Set([id]));
    expect(seen.slice(1).every((m) => attributeString(m.attributes, 'cr-not-before') !== undefined)).toBe(true);
    await waitFor(async () => (await depth(sqs.client, q.url)).inFlight === 0, 5000, 'the last one deleted');
    expect(await depth(sqs.client, q.dlqUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('when the new message cannot be sent, the received one is hidden for the delay instead (logged, no body)', async () => {
    const q = await redriveQueue();
    const log = captureLogger();
    const { seen, handler } = retrying(1, 1);
    // SQS refuses every SendMessage (the retry's copy) and answers the rest.
    const refusing = { send: (command: unknown, opts?: unknown) => (command instanceof SendMessageCommand ? Promise.reject(Object.assign(new Error('denied'), { name: 'AccessDenied' })) : sqs.client.send(command as never, opts as never)) } as unknown as SQSClient;
    const c = createConsumer({ client: refusing, queue: q, service: 'app', waitTimeSeconds: 1, handler, retryAsNewMessage: true, logger: log.logger });
    running.push(c);
    c.start();
    const body = `${job()} patient Jane Doe`;
    await put(sqs.client, q.url, body);
    await waitFor(() => seen.length === 2, 15_000, 'the second delivery');
    expect(seen.map((m) => m.receiveCount)).toEqual([1, 2]);
    expect(log.raw()).toContain('could not send the message again for its retry');
    expect(log.raw()).not.toContain('Jane');
  });
});
