import {
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type Message,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';
import type { AuditEvent, AuditSink } from '../../../services/core/audit/types.ts';
import { createLogger } from '../../../services/core/log/logger.ts';
import { stringAttribute, type SqsAttributes } from '../../../services/core/transport/attributes.ts';
import type { LogicalQueue, ResolvedQueue } from '../../../services/core/transport/queues.ts';
import { countSqsCalls, type SqsCallCounter } from '../../helpers/sqsCalls.ts';

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wire-like attributes for a fresh envelope id. */
export function wireAttributes(id: string = randomUUID()): SqsAttributes {
  return { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(id), 'cr-signer': stringAttribute('ABCDEF0123456789') };
}

/** Sends one raw message. */
export async function put(client: SQSClient, queueUrl: string, body: string, attributes: SqsAttributes = wireAttributes()): Promise<void> {
  await client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageAttributes: attributes }));
}

/** Receives (and leaves in flight for `visibility` seconds) whatever is visible now. */
export async function take(client: SQSClient, queueUrl: string, waitSeconds = 0, visibility = 30): Promise<Message[]> {
  const res = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: waitSeconds,
      VisibilityTimeout: visibility,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    }),
  );
  return res.Messages ?? [];
}

/** Waits until `count` messages can be received from a queue; returns them (kept in flight). */
export async function takeAtLeast(client: SQSClient, queueUrl: string, count: number, timeoutMs = 10_000): Promise<Message[]> {
  const got: Message[] = [];
  await waitFor(async () => {
    got.push(...(await take(client, queueUrl, 1)));
    return got.length >= count;
  }, timeoutMs, `${count} message(s) on ${queueUrl.slice(queueUrl.lastIndexOf('/') + 1)}`);
  return got;
}

/** Approximate visible + in-flight counts of a queue. */
export async function depth(client: SQSClient, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const res = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return { visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

/** Current value of a counter for the given labels. */
export async function counterValue(counter: Counter<string>, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

/** An audit sink that keeps events in memory. */
export function memoryAudit(): AuditSink & { events: AuditEvent[] } {
  const events: AuditEvent[] = [];
  return { events, record: async (e) => void events.push(e) };
}

/** A pino logger writing JSON lines into an array, to assert on what was really logged. */
export function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const logger = createLogger({ service: 'test', level: 'debug', destination: { write: (s: string) => void chunks.push(s) } });
  return {
    logger,
    raw: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Deletes every queue whose name starts with `prefix` (test cleanup; matters on a real endpoint). */
export async function deleteQueues(client: SQSClient, prefix: string): Promise<void> {
  const res = await client.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
  await Promise.all((res.QueueUrls ?? []).map((QueueUrl) => client.send(new DeleteQueueCommand({ QueueUrl })).catch(() => undefined)));
}

/** Counts a client's SQS calls by operation through its middleware stack, until `stop()`. */
export function countCalls(client: SQSClient): SqsCallCounter {
  return countSqsCalls([client]);
}

/** A resolved queue for a test that has only URLs (a fake client, a child process): `logical` is the metric label. */
export function testQueue(url: string, options: { logical?: string; fifo?: boolean; dlqUrl?: string; quarantineUrl?: string } = {}): ResolvedQueue {
  return {
    logical: (options.logical ?? url.slice(url.lastIndexOf('/') + 1)) as LogicalQueue,
    name: url.slice(url.lastIndexOf('/') + 1),
    url,
    fifo: options.fifo ?? false,
    dlqUrl: options.dlqUrl ?? `${url}-dlq`,
    quarantineUrl: options.quarantineUrl ?? `${url}-quarantine`,
  };
}
