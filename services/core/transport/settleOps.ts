// The consumer's SQS writes for settled messages: deletes (done, duplicate, after a copy to
// quarantine or DLQ) and visibility changes (retry, release), coalesced into batch calls.
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.ts';
import { createBatcher } from './batcher.ts';
import { errorCode } from './errors.ts';
import type { ResolvedQueue } from './queues.ts';
import { changeVisibilityEntries, deleteMessageBatch, SQS_BATCH_LIMIT, type OpResult } from './messageOps.ts';

/** Ids a log line may carry about a message (never its body). */
export interface MessageIds {
  /** SQS message id. */
  messageId: string;
  /** Envelope id, when known. */
  envelopeId: string | undefined;
}

/** Options for {@link createSettleOps}. */
export interface SettleOpsOptions {
  /** The SQS client. */
  client: SQSClient;
  /** The queue the messages are held from (its URL; its logical name is the metric label). */
  queue: ResolvedQueue;
  /** The consumer's logger (bound to the queue). */
  log: Logger;
  /** Transport metrics (`deleteFailures`, `visibilityFailures`). */
  metrics: Metrics['transport'] | undefined;
  /** How long a delete or visibility change waits for others to share its batch call, ms; 0 = next turn of the event loop. */
  lingerMs: number;
}

/** Batched deletes and visibility changes of held messages. */
export interface SettleOps {
  /** Deletes a held message (retried per entry); false, counted and logged, when it will be redelivered. */
  remove(receiptHandle: string, ids: MessageIds): Promise<boolean>;
  /** Sets a held message's visibility (0 releases it); a failure is counted and logged, the message returns after its timeout. */
  setVisibility(receiptHandle: string, seconds: number, ids: MessageIds): Promise<void>;
}

interface PendingDelete {
  handle: string;
  ids: MessageIds;
  resolve: (deleted: boolean) => void;
  settled?: boolean;
}

interface PendingVisibility {
  handle: string;
  seconds: number;
  ids: MessageIds;
  resolve: () => void;
  settled?: boolean;
}

/** Creates the batched settle operations of one consumer. */
export function createSettleOps(options: SettleOpsOptions): SettleOps {
  const { client, log, metrics } = options;
  const queueUrl = options.queue.url;
  const queue = options.queue.logical;

  function deleted(d: PendingDelete, res: OpResult): void {
    if (d.settled) return;
    d.settled = true;
    if (!res.ok) {
      metrics?.deleteFailures.inc({ queue });
      log.error({ ...d.ids, code: res.code }, 'delete failed; the message will be redelivered');
    }
    d.resolve(res.ok);
  }

  function visibilityChanged(v: PendingVisibility, res: OpResult): void {
    if (v.settled) return;
    v.settled = true;
    if (!res.ok) {
      metrics?.visibilityFailures.inc({ queue });
      log.warn({ messageId: v.ids.messageId, code: res.code, seconds: v.seconds }, 'visibility change failed; the message returns after its timeout');
    }
    v.resolve();
  }

  const deletes = createBatcher<PendingDelete>({
    maxEntries: SQS_BATCH_LIMIT,
    lingerMs: options.lingerMs,
    run: (batch) =>
      deleteMessageBatch(
        client,
        queueUrl,
        batch.map((d) => d.handle),
        (i, res) => deleted(batch[i]!, res),
      ),
    // deleteMessageBatch reads failures as values; should it throw anyway, nobody is left waiting.
    onRunError: (batch, err) => {
      for (const d of batch) deleted(d, { ok: false, code: errorCode(err) });
    },
  });

  const visibility = createBatcher<PendingVisibility>({
    maxEntries: SQS_BATCH_LIMIT,
    lingerMs: options.lingerMs,
    run: async (batch) => {
      const results = await changeVisibilityEntries(
        client,
        queueUrl,
        batch.map((v) => ({ receiptHandle: v.handle, seconds: v.seconds })),
      );
      batch.forEach((v, i) => visibilityChanged(v, results[i]!));
    },
    onRunError: (batch, err) => {
      for (const v of batch) visibilityChanged(v, { ok: false, code: errorCode(err) });
    },
  });

  return {
    remove: (handle, ids) => new Promise((resolve) => deletes.add({ handle, ids, resolve })),
    setVisibility: (handle, seconds, ids) => new Promise((resolve) => visibility.add({ handle, seconds, ids, resolve })),
  };
}
