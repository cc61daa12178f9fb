import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  SendMessageCommand,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SqsAttributes } from './attributes.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { errorCode } from './errors.ts';

/** Largest number of entries in an SQS batch call. */
export const SQS_BATCH_LIMIT = 10;

/** The outcome of one SQS operation on a held message: ok, or the PHI-free error code. */
export type OpResult = { ok: true } | { ok: false; code: string };

/** Delete failures no retry can fix: the handle is stale or the request is wrong. */
const FINAL_DELETE_CODES = /ReceiptHandleIsInvalid|InvalidParameterValue/;

/**
 * Deletes up to 10 messages with DeleteMessageBatch, reading every entry's result: failed
 * entries (and entries SQS does not mention) are retried with backoff, up to `attempts`.
 * `final` is called once per handle index, as soon as that entry is deleted or given up.
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
    const again: number[] = [];
    const fail = (i: number, code: string): void => {
      if (attempt < attempts && !FINAL_DELETE_CODES.test(code)) again.push(i);
      else final(i, { ok: false, code });
    };
    try {
      const res = await client.send(
        new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending.map((i) => ({ Id: `d${i}`, ReceiptHandle: receiptHandles[i]! })) }),
      );
      const answered = new Set<number>();
      for (const ok of res.Successful ?? []) {
        const i = Number(ok.Id?.slice(1));
        if (!pending.includes(i) || answered.has(i)) continue;
        answered.add(i);
        final(i, { ok: true });
      }
      for (const bad of res.Failed ?? []) {
        const i = Number(bad.Id?.slice(1));
        if (!pending.includes(i) || answered.has(i)) continue;
        answered.add(i);
        fail(i, bad.Code ?? 'unknown');
      }
      // An entry SQS did not mention is not assumed deleted.
      for (const i of pending) if (!answered.has(i)) fail(i, 'NoResultForEntry');
    } catch (err) {
      const code = errorCode(err);
      for (const i of pending) fail(i, code);
    }
    if (again.length === 0) return;
    pending = again.sort((a, b) => a - b);
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
  try {
    const res = await client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: entries.map((e, i) => ({ Id: `v${i}`, ReceiptHandle: e.receiptHandle, VisibilityTimeout: e.seconds })),
      }),
    );
    const results: OpResult[] = entries.map(() => ({ ok: false, code: 'NoResultForEntry' }));
    const answered = new Set<number>();
    for (const ok of res.Successful ?? []) {
      const i = Number(ok.Id?.slice(1));
      if (i >= 0 && i < entries.length && !answered.has(i)) {
        answered.add(i);
        results[i] = { ok: true };
      }
    }
    for (const bad of res.Failed ?? []) {
      const i = Number(bad.Id?.slice(1));
      if (i >= 0 && i < entries.length && !answered.has(i)) {
        answered.add(i);
        results[i] = { ok: false, code: bad.Code ?? 'unknown' };
      }
    }
    return results;
  } catch (err) {
    const code = errorCode(err);
    return entries.map(() => ({ ok: false, code }));
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
}

/** Sends a copy of a held message to another queue, retrying transient failures. */
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
        }),
      );
      return { ok: true };
    } catch (err) {
      code = errorCode(err);
      if ((err as { $fault?: string }).$fault === 'client' && !/Throttl/i.test(code)) break;
      if (attempt < attempts) await sleep(backoffDelay(attempt, { base: 200, max: 2000 }));
    }
  }
  return { ok: false, code };
}
