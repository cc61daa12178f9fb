import { SendMessageBatchCommand, type SendMessageBatchRequestEntry, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import type { Metrics } from '../metrics/registry.ts';
import { ATTR_NOT_BEFORE, stringAttribute, type SqsAttributes } from './attributes.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { createBatcher } from './batcher.ts';
import { failedBatch, readBatchResult, type EntryOutcome } from './batchResult.ts';
import { TransportError, errorCode } from './errors.ts';
import { fifoGroupOf, type ResolvedQueue } from './queues.ts';
import { SQS_MAX_MESSAGE_BYTES, sqsMessageSize } from './size.ts';
import { checkInteger, checkNumber, checkQueue } from './validation.ts';

export { SQS_MAX_MESSAGE_BYTES, sqsMessageSize } from './size.ts';

/** A message to send. */
export interface OutgoingMessage {
  /** Envelope id: the FIFO deduplication id and the key results are reported under. */
  id: string;
  /** The body (an armored OpenPGP message); never logged. */
  body: string;
  /** SQS message attributes (the wire attributes only: no PHI). */
  attributes?: SqsAttributes;
  /**
   * Delivery delay in seconds (0-900). A standard queue delays the message itself; a FIFO queue
   * refuses per-message delays, so there it travels as the `cr-not-before` attribute and the
   * consumer holds the message invisible until then, without handing it to its handler.
   */
  delaySeconds?: number;
  /**
   * On an ordered FIFO queue: messages with the same key share a message group and are handled in
   * the order sent (see `fifoGroupOf`). Travels in clear as part of the MessageGroupId: a short
   * token that names nothing (an ordering bucket), never an identifier.
   */
  orderingKey?: string;
}

/** The outcome of one message of a batch: never assumed, always read from SQS's answer. */
export interface SendResult {
  /** The message's envelope id. */
  id: string;
  /** True when SQS accepted it. */
  ok: boolean;
  /** The SQS message id when accepted. */
  messageId?: string;
  /** Why it was not sent: CR_TRANSPORT_MESSAGE_TOO_LARGE or CR_TRANSPORT_SEND_FAILED (SQS code in `details.sqsCode`). */
  error?: TransportError;
}

/** Options for {@link createProducer}. */
export interface ProducerOptions {
  /** The SQS client. */
  client: SQSClient;
  /** The queue to send to, as resolved once (URL, logical name for logs and metrics, FIFO: group and deduplication ids). */
  queue: ResolvedQueue;
  /** pino logger; silent by default. */
  logger?: Logger;
  /** Metrics to update (`sent`, `sendFailures`). */
  metrics?: Metrics;
  /** Attempts per message, including the first; default 3. */
  maxAttempts?: number;
  /** Backoff between attempts: first delay in ms; default 200. */
  retryBaseMs?: number;
  /** Backoff cap in ms; default 5000. */
  retryMaxMs?: number;
  /** How long a `send` waits for concurrent sends to share its SendMessageBatch, ms; 0 (default) = until the next turn of the event loop. */
  lingerMs?: number;
}

/** Sends messages to one queue, checking every entry's result. */
export interface Producer {
  /** URL of the queue this producer sends to. */
  readonly queueUrl: string;
  /** The queue this producer sends to. */
  readonly queue: ResolvedQueue;
  /**
   * Sends one message and resolves once SQS accepted it; concurrent calls share SendMessageBatch
   * calls. Throws CR_TRANSPORT_MESSAGE_TOO_LARGE (413) or CR_TRANSPORT_SEND_FAILED (503) for its own entry.
   */
  send(message: OutgoingMessage): Promise<{ id: string; messageId: string }>;
  /** Sends many (batches of 10, within the size limit); resolves with one result per message, in order. */
  sendBatch(messages: readonly OutgoingMessage[]): Promise<SendResult[]>;
}

const MAX_BATCH_ENTRIES = 10;

/** Creates a producer for one queue. */
export function createProducer(options: ProducerOptions): Producer {
  checkQueue('producer', options.queue);
  checkInteger('producer', 'maxAttempts', options.maxAttempts, 1);
  checkNumber('producer', 'retryBaseMs', options.retryBaseMs, 0);
  checkNumber('producer', 'retryMaxMs', options.retryMaxMs, options.retryBaseMs ?? 0);
  checkNumber('producer', 'lingerMs', options.lingerMs, 0);
  const { client } = options;
  const target = options.queue;
  const queueUrl = target.url;
  const queue = target.logical;
  const log = (options.logger ?? silentLogger).child({ queue });
  const metrics = options.metrics?.transport;
  const maxAttempts = options.maxAttempts ?? 3;
  const backoff = { base: options.retryBaseMs ?? 200, max: options.retryMaxMs ?? 5000 };

  /** The message as it goes on the wire: on FIFO a delay becomes the `cr-not-before` attribute. */
  function wireFormOf(message: OutgoingMessage): OutgoingMessage {
    if (!target.fifo || !message.delaySeconds) return message;
    const notBefore = String(Date.now() + message.delaySeconds * 1000);
    const { delaySeconds: _delay, ...rest } = message;
    return { ...rest, attributes: { ...message.attributes, [ATTR_NOT_BEFORE]: stringAttribute(notBefore) } };
  }

  function entryOf(message: OutgoingMessage, index: number): SendMessageBatchRequestEntry {
    return {
      Id: `m${index}`,
      MessageBody: message.body,
      ...(message.attributes && Object.keys(message.attributes).length > 0 ? { MessageAttributes: message.attributes } : {}),
      ...(message.delaySeconds !== undefined && !target.fifo ? { DelaySeconds: message.delaySeconds } : {}),
      ...(target.fifo ? { MessageGroupId: fifoGroupOf(target, message.id, message.orderingKey), MessageDeduplicationId: message.id } : {}),
    };
  }

  /** Groups indices into requests of at most 10 entries and at most 1 MiB in total. */
  function chunk(indices: readonly number[], sizes: readonly number[]): number[][] {
    const out: number[][] = [];
    let current: number[] = [];
    let bytes = 0;
    for (const i of indices) {
      const size = sizes[i]!;
      if (current.length === MAX_BATCH_ENTRIES || (current.length > 0 && bytes + size > SQS_MAX_MESSAGE_BYTES)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(i);
      bytes += size;
    }
    if (current.length > 0) out.push(current);
    return out;
  }

  function failure(message: OutgoingMessage, sqsCode: string, cause?: unknown): TransportError {
    return new TransportError('CR_TRANSPORT_SEND_FAILED', `SQS did not accept message ${message.id} on ${queue} (${sqsCode})`, {
      ...(cause === undefined ? {} : { cause }),
      details: { sqsCode },
    });
  }

  /** Metrics and a PHI-free log line for a final result. */
  function report(r: SendResult): void {
    if (r.ok) {
      metrics?.sent.inc({ queue });
    } else {
      metrics?.sendFailures.inc({ queue });
      log.warn({ envelopeId: r.id, code: r.error?.code, sqsCode: r.error?.details?.sqsCode }, 'message not sent');
    }
  }

  function tooLarge(message: OutgoingMessage, size: number): TransportError {
    return new TransportError(
      'CR_TRANSPORT_MESSAGE_TOO_LARGE',
      `message ${message.id} is ${size} bytes with its attributes; SQS accepts at most ${SQS_MAX_MESSAGE_BYTES}`,
      { details: { size, limit: SQS_MAX_MESSAGE_BYTES } },
    );
  }

  /**
   * Sends `indices` of `messages` with SendMessageBatch, reading every entry's result, and
   * retries transient failures with backoff; `final` is called once per index as soon as
   * that entry is accepted, refused for good, or out of attempts.
   */
  async function deliver(messages: readonly OutgoingMessage[], sizes: readonly number[], indices: number[], final: (i: number, r: SendResult) => void): Promise<void> {
    let pending = indices;
    for (let attempt = 1; pending.length > 0; attempt++) {
      const again: number[] = [];
      const fail = (i: number, error: TransportError, retryable: boolean): void => {
        if (retryable && attempt < maxAttempts) again.push(i);
        else final(i, { id: messages[i]!.id, ok: false, error });
      };
      await Promise.all(
        chunk(pending, sizes).map(async (chunkIndices) => {
          const ids = chunkIndices.map((i) => `m${i}`);
          let outcomes: EntryOutcome[];
          try {
            const res = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunkIndices.map((i) => entryOf(messages[i]!, i)) }));
            outcomes = readBatchResult(ids, res);
          } catch (err) {
            outcomes = failedBatch(chunkIndices.length, err);
            log.warn({ code: errorCode(err), entries: chunkIndices.length, attempt }, 'SendMessageBatch failed');
            chunkIndices.forEach((i, k) => {
              const o = outcomes[k]!;
              if (!o.ok) fail(i, failure(messages[i]!, o.code, err), o.retryable);
            });
            return;
          }
          chunkIndices.forEach((i, k) => {
            const o = outcomes[k]!;
            if (o.ok) final(i, { id: messages[i]!.id, ok: true, ...(o.messageId ? { messageId: o.messageId } : {}) });
            else fail(i, failure(messages[i]!, o.code), o.retryable);
          });
        }),
      );
      if (again.length === 0) break;
      pending = again.sort((a, b) => a - b);
      await sleep(backoffDelay(attempt, backoff));
    }
  }

  async function sendBatch(input: readonly OutgoingMessage[]): Promise<SendResult[]> {
    const messages = input.map(wireFormOf);
    const results: SendResult[] = messages.map((m) => ({ id: m.id, ok: false }));
    const sizes = messages.map((m) => sqsMessageSize(m.body, m.attributes));
    const pending: number[] = [];
    messages.forEach((m, i) => {
      if (sizes[i]! > SQS_MAX_MESSAGE_BYTES) results[i]!.error = tooLarge(m, sizes[i]!);
      else pending.push(i);
    });
    await deliver(messages, sizes, pending, (i, r) => {
      results[i] = r;
    });
    for (const r of results) report(r);
    return results;
  }

  /** A send waiting in the coalescer for its batch. */
  interface Queued {
    message: OutgoingMessage;
    size: number;
    resolve: (sent: { id: string; messageId: string }) => void;
    reject: (err: TransportError) => void;
  }

  // Concurrent send() calls share SendMessageBatch calls; each caller gets its own entry's result.
  const coalescer = createBatcher<Queued>({
    maxEntries: MAX_BATCH_ENTRIES,
    maxBytes: SQS_MAX_MESSAGE_BYTES,
    sizeOf: (q) => q.size,
    lingerMs: options.lingerMs ?? 0,
    run: async (batch) => {
      const messages = batch.map((q) => q.message);
      await deliver(
        messages,
        batch.map((q) => q.size),
        batch.map((_, i) => i),
        (i, r) => {
          report(r);
          const q = batch[i]!;
          if (r.ok) q.resolve({ id: q.message.id, messageId: r.messageId ?? '' });
          else q.reject(r.error ?? failure(q.message, 'unknown'));
        },
      );
    },
    // Not expected (deliver reads failures as values); a caller is never left waiting.
    onRunError: (batch, err) => {
      for (const q of batch) q.reject(failure(q.message, errorCode(err), err));
    },
  });

  function send(input: OutgoingMessage): Promise<{ id: string; messageId: string }> {
    const message = wireFormOf(input);
    const size = sqsMessageSize(message.body, message.attributes);
    if (size > SQS_MAX_MESSAGE_BYTES) {
      const error = tooLarge(message, size);
      report({ id: message.id, ok: false, error });
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => coalescer.add({ message, size, resolve, reject }));
  }

  return { queueUrl, queue: target, send, sendBatch };
}
