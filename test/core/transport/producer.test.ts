import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRelayError } from '../../../services/core/errors/relayError.ts';
import { createMetrics } from '../../../services/core/metrics/registry.ts';
import { stringAttribute } from '../../../services/core/transport/attributes.ts';
import { createProducer, SQS_MAX_MESSAGE_BYTES, sqsMessageSize, type OutgoingMessage } from '../../../services/core/transport/producer.ts';
import { ensureQueues, type EnsuredQueue } from '../../../services/core/transport/queues.ts';
import { createSqsClient } from '../../../services/core/transport/sqsClient.ts';
import { startTestSqs, type TestSqs } from '../../helpers/sqs.ts';
import { captureLogger, countCalls, counterValue, deleteQueues, depth, takeAtLeast, wireAttributes } from './helpers.ts';

let sqs: TestSqs;
let q: EnsuredQueue;
beforeAll(async () => {
  sqs = await startTestSqs();
  ({ 'app-to-interface': q } = await ensureQueues(sqs.client, { prefix: sqs.prefix, queues: ['app-to-interface'] }));
});
afterAll(async () => {
  await deleteQueues(sqs.client, sqs.prefix).catch(() => undefined);
  await sqs.stop();
});

const message = (body: string): OutgoingMessage => {
  const id = randomUUID();
  return { id, body, attributes: wireAttributes(id) };
};

describe('sqsMessageSize', () => {
  it('counts body bytes plus attribute names, types and values as SQS does', () => {
    expect(sqsMessageSize('é')).toBe(2);
    expect(sqsMessageSize('ab', { 'cr-version': stringAttribute('1') })).toBe(2 + 10 + 6 + 1);
    expect(sqsMessageSize('', { b: { DataType: 'Binary', BinaryValue: new Uint8Array(5) } })).toBe(1 + 6 + 5);
    expect(SQS_MAX_MESSAGE_BYTES).toBe(1_048_576);
  });
});

describe('producer', () => {
  it('coalesces ten concurrent send() calls into one SendMessageBatch call (counted on the SDK middleware stack)', async () => {
    const { 'app-to-interface': own } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}co-`, queues: ['app-to-interface'] });
    const producer = createProducer({ client: sqs.client, queue: own });
    const calls = countCalls(sqs.client);
    try {
      const batch = Array.from({ length: 10 }, (_, i) => message(`co-${i}`));
      const sent = await Promise.all(batch.map((m) => producer.send(m)));
      expect(sent.map((r) => r.id)).toEqual(batch.map((m) => m.id));
      expect(new Set(sent.map((r) => r.messageId)).size).toBe(10);
      expect(calls.count('SendMessageBatch')).toBe(1);
    } finally {
      calls.stop();
    }
    const got = await takeAtLeast(sqs.client, own.url, 10);
    expect(got.map((m) => m.Body).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `co-${i}`).sort());
  });

  it('sends a batch larger than 10 in chunks and reports every entry', async () => {
    const metrics = createMetrics('test', { defaultMetrics: false });
    const producer = createProducer({ client: sqs.client, queue: q, metrics });
    const batch = Array.from({ length: 13 }, (_, i) => message(`m-${i}`));
    const results = await producer.sendBatch(batch);
    expect(results.map((r) => r.id)).toEqual(batch.map((m) => m.id));
    expect(results.every((r) => r.ok && r.messageId)).toBe(true);
    const got = await takeAtLeast(sqs.client, q.url, 13);
    expect(new Set(got.map((m) => m.Body))).toEqual(new Set(batch.map((m) => m.body)));
    expect(await counterValue(metrics.transport.sent, { queue: 'app-to-interface' })).toBe(13);
  });

  it('reports an entry SQS refuses instead of assuming it sent, and does not retry a sender fault', async () => {
    const metrics = createMetrics('test', { defaultMetrics: false });
    const log = captureLogger();
    const producer = createProducer({ client: sqs.client, queue: q, metrics, logger: log.logger, retryBaseMs: 10 });
    const good = message('fine');
    const bad = message('contains a NUL \u0000 which SQS refuses');
    const results = await producer.sendBatch([good, bad]);
    expect(results[0]).toMatchObject({ id: good.id, ok: true });
    expect(results[1]).toMatchObject({ id: bad.id, ok: false });
    expect(results[1]!.error?.code).toBe('CR_TRANSPORT_SEND_FAILED');
    expect(results[1]!.error?.details?.sqsCode).toBe('InvalidMessageContents');
    expect(await counterValue(metrics.transport.sendFailures, { queue: 'app-to-interface' })).toBe(1);
    expect(log.raw()).not.toContain('which SQS refuses');
    const got = await takeAtLeast(sqs.client, q.url, 1);
    expect(got.map((m) => m.Body)).toEqual(['fine']);
  });

  it('refuses a message over 1 MiB with CR_TRANSPORT_MESSAGE_TOO_LARGE (413), in a batch and alone', async () => {
    const producer = createProducer({ client: sqs.client, queue: q });
    const attributes = wireAttributes();
    const exact = 'x'.repeat(SQS_MAX_MESSAGE_BYTES - sqsMessageSize('', attributes));
    const fits = { id: randomUUID(), body: exact, attributes };
    const tooBig = { id: randomUUID(), body: exact + 'y', attributes };
    const results = await producer.sendBatch([tooBig, fits]);
    expect(results[0]).toMatchObject({ ok: false });
    expect(results[0]!.error?.code).toBe('CR_TRANSPORT_MESSAGE_TOO_LARGE');
    expect(results[0]!.error?.status).toBe(413);
    expect(results[1]).toMatchObject({ ok: true });
    const err = await producer.send(tooBig).catch((e: unknown) => e);
    expect(isRelayError(err, 'CR_TRANSPORT_MESSAGE_TOO_LARGE')).toBe(true);
    const got = await takeAtLeast(sqs.client, q.url, 1);
    expect(got[0]!.Body!.length).toBe(exact.length);
  });

  it('throws CR_TRANSPORT_SEND_FAILED (503) when SQS cannot be reached, after its retries', async () => {
    const client = createSqsClient({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
    const producer = createProducer({ client, queue: q, maxAttempts: 2, retryBaseMs: 10 });
    const err = await producer.send(message('nowhere')).catch((e: unknown) => e);
    client.destroy();
    expect(isRelayError(err, 'CR_TRANSPORT_SEND_FAILED')).toBe(true);
    expect((err as { status?: number }).status).toBe(503);
  });

  it('sends to a FIFO queue with the envelope id as deduplication id', async () => {
    const { 'app-to-interface': fq } = await ensureQueues(sqs.client, { prefix: `${sqs.prefix}f-`, fifo: true, queues: ['app-to-interface'] });
    const producer = createProducer({ client: sqs.client, queue: fq });
    const m = message('once');
    const first = await producer.send(m);
    const second = await producer.send(m);
    expect(second.messageId).toBe(first.messageId);
    expect(await depth(sqs.client, fq.url)).toEqual({ visible: 1, inFlight: 0 });
  });
});
