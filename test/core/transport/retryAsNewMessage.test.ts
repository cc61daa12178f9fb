// `retryAsNewMessage` (the SMS redaction queue's consumer): a retry sends the message again as a new
// one and deletes the one received, so that a handler that bounds its own retries (a window of hours)
// is not cut short by the queue's maxReceiveCount, whose redrive moves a message retried by
// visibility to the DLQ after that many receives.
import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attributeString } from '../../../services/core/transport/attributes.ts';
import { createConsumer, type Consumer, type ConsumerOptions, type ReceivedMessage } from '../../../services/core/transport/consumer.ts';
import { ensureQueues, type EnsuredQueue } from '../../../services/core/transport/queues.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { captureLogger, deleteQueues, depth, put, waitFor, wireAttributes } from './helpers.ts';

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

/** A queue whose redrive moves a message to its DLQ after 2 receives. */
async function freshQueue(fifo = false): Promise<EnsuredQueue> {
  const { 'app-sms-redaction': q } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}r${n++}-`, queues: ['app-sms-redaction'], maxReceiveCount: 2, fifo });
  return q;
}

function consumer(q: EnsuredQueue, handler: ConsumerOptions['handler'], extra: Partial<ConsumerOptions> = {}): Consumer {
  const c = createConsumer({ client: sqs.client, queue: q, service: 'app', waitTimeSeconds: 1, handler, ...extra });
  running.push(c);
  c.start();
  return c;
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
    const q = await freshQueue();
    const { seen, handler } = retrying(5, 0);
    consumer(q, handler);
    await put(sqs.client, q.url, job());
    await waitFor(async () => (await depth(sqs.client, q.dlqUrl)).visible === 1, 15_000, 'the message in the DLQ');
    expect(seen.map((m) => m.receiveCount)).toEqual([1, 2]);
  });

  it('retried five times on a queue that redrives after two receives: handled six times, each a first receive, the same body and attributes; nothing in the DLQ', async () => {
    const q = await freshQueue();
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
    const q = await freshQueue();
    const { seen, handler } = retrying(1, 2);
    const times: number[] = [];
    consumer(q, async (m, s) => (times.push(Date.now()), handler(m, s)), { retryAsNewMessage: true });
    await put(sqs.client, q.url, job());
    await waitFor(() => seen.length === 2, 15_000, 'the second delivery');
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1900);
    expect(seen.map((m) => m.receiveCount)).toEqual([1, 1]);
  });

  it('on a FIFO queue: the new message keeps its group, waits for the delay (cr-not-before), and the DLQ stays empty', async () => {
    const q = await freshQueue(true);
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
    const q = await freshQueue();
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
