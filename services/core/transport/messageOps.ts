import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  SendMessageCommand,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SqsAttributes } from './attributes.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { failedBatch, readBatchResult, type EntryOutcome } from './batchResult.ts';
import { errorCode, isPermanentSqsError } from './errors.ts';

/** Largest number of entries in an SQS batch call. */
export const SQS_BATCH_LIMIT = 10;

/** The outcome of one SQS operation on a held message: ok, or the PHI-free error code. */
export type OpResult = { ok: true } | { ok: false; code: string };

/** Delete failures no retry can fix: the handle is stale or the request is wrong. */
const FINAL_DELETE_CODES = /ReceiptHandleIsInvalid|InvalidParameterValue/;

/**
 * Deletes up to 10 messages with DeleteMessageBatch, reading every entry's result
 * ({@link readBatchResult}): retryable failures (and entries SQS does not mention) are retried
 * with backoff, up to `attempts`. `final` is called once per handle index, as soon as that
 * entry is deleted or given up.
 */
export async function deleteMessageBatch(
  client: SQSClient,
  queueUrl: string,
  receiptHandles: readonly string[],
  final: (index: number, result: OpResult) => void,
  attempts = 3,
): Promise<void> {
  let pending = receiptHandles.map((_, i) => i);
  for (let attempt = 1; pending.length > 0; attempt++) {
    const ids = pending.map((i) => `d${i}`);
    let outcomes: EntryOutcome[];
    try {
      const res = await client.send(
        new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending.map((i, k) => ({ Id: ids[k]!, ReceiptHandle: receiptHandles[i]! })) }),
      );
      outcomes = readBatchResult(ids, res, FINAL_DELETE_CODES);
    } catch (err) {
      outcomes = failedBatch(pending.length, err);
    }
    const again: number[] = [];
    outcomes.forEach((o, k) => {
      const i = pending[k]!;
      if (!o.ok && o.retryable && attempt < attempts) again.push(i);
      else final(i, o);
    });
    if (again.length === 0) return;
    pending = again;
    await sleep(backoffDelay(attempt, { base: 200, max: 2000 }));
  }
}

/** One visibility change of a batch. */
export interface VisibilityEntry {
  /** Receipt handle of the held message. */
  receiptHandle: string;
  /** New visibility timeout, seconds (0 releases it at once). */
  seconds: number;
}

/**
 * Changes the visibility of up to 10 held messages in one ChangeMessageVisibilityBatch call,
 * each with its own timeout; one result per entry, in order, read from SQS's answer (one attempt,
 * since a failed change only means the message returns after its timeout).
 */
export async function changeVisibilityEntries(client: SQSClient, queueUrl: string, entries: readonly VisibilityEntry[]): Promise<OpResult[]> {
  const ids = entries.map((_, i) => `v${i}`);
  try {
    const res = await client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: entries.map((e, i) => ({ Id: ids[i]!, ReceiptHandle: e.receiptHandle, VisibilityTimeout: e.seconds })),
      }),
    );
    return readBatchResult(ids, res);
  } catch (err) {
    return failedBatch(entries.length, err);
  }
}

/**
 * Sets the visibility of many held messages in batches of 10, reading every entry's
 * result; returns the receipt handles that failed with their codes (never assumed done).
 */
export async function changeVisibilityBatch(
  client: SQSClient,
  queueUrl: string,
  receiptHandles: readonly string[],
  seconds: number,
): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  const chunks: string[][] = [];
  for (let i = 0; i < receiptHandles.length; i += SQS_BATCH_LIMIT) chunks.push(receiptHandles.slice(i, i + SQS_BATCH_LIMIT));
  await Promise.all(
    chunks.map(async (handles) => {
      const results = await changeVisibilityEntries(client, queueUrl, handles.map((receiptHandle) => ({ receiptHandle, seconds })));
      results.forEach((r, i) => {
        if (!r.ok) failed.set(handles[i]!, r.code);
      });
    }),
  );
  failed.delete('');
  return failed;
}

/** Copies attribute values in the shape SendMessage accepts (drops empty list members SQS rejects). */
export function copyAttributes(attributes: SqsAttributes): SqsAttributes {
  const out: SqsAttributes = {};
  for (const [name, v] of Object.entries(attributes)) {
    const copy: MessageAttributeValue = { DataType: v.DataType };
    if (v.StringValue !== undefined) copy.StringValue = v.StringValue;
    if (v.BinaryValue !== undefined) copy.BinaryValue = v.BinaryValue;
    out[name] = copy;
  }
  return out;
}

/** What {@link forwardMessage} sends. */
export interface ForwardInput {
  /** Target queue URL (quarantine or DLQ). */
  queueUrl: string;
  /** The original body, byte for byte (the ciphertext as it came). */
  body: string;
  /** The original attributes plus the added `cr-*` ones. */
  attributes: SqsAttributes;
  /** FIFO target: message group and deduplication id. */
  fifo?: { groupId: string; deduplicationId: string };
  /** Delay before the copy can be received, seconds (standard queues only, 0 to 900). */
  delaySeconds?: number;
}

/** Sends a copy of a held message to a queue (another, or its own for a retry), retrying transient failures. */
export async function forwardMessage(client: SQSClient, input: ForwardInput, attempts = 3): Promise<OpResult> {
  let code = 'unknown';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await client.send(
        new SendMessageCommand({
          QueueUrl: input.queueUrl,
          MessageBody: input.body,
          MessageAttributes: input.attributes,
          ...(input.fifo ? { MessageGroupId: input.fifo.groupId, MessageDeduplicationId: input.fifo.deduplicationId } : {}),
          ...(input.delaySeconds === undefined ? {} : { DelaySeconds: input.delaySeconds }),
        }),
      );
      return { ok: true };
    } catch (err) {
      code = errorCode(err);
      if (isPermanentSqsError(err)) break;
      if (attempt < attempts) await sleep(backoffDelay(attempt, { base: 200, max: 2000 }));
    }
  }
  return { ok: false, code };
}
