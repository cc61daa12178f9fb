import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
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

/** Deletes a message, retrying transient failures; `ok: false` means it will come back. */
export async function deleteMessage(client: SQSClient, queueUrl: string, receiptHandle: string, attempts = 3): Promise<OpResult> {
  let code = 'unknown';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle }));
      return { ok: true };
    } catch (err) {
      code = errorCode(err);
      if (/ReceiptHandleIsInvalid|InvalidParameterValue/.test(code)) break;
      if (attempt < attempts) await sleep(backoffDelay(attempt, { base: 200, max: 2000 }));
    }
  }
  return { ok: false, code };
}

/** Sets the visibility timeout of one held message (0 releases it at once). */
export async function changeVisibility(client: SQSClient, queueUrl: string, receiptHandle: string, seconds: number): Promise<OpResult> {
  try {
    await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
    return { ok: true };
  } catch (err) {
    return { ok: false, code: errorCode(err) };
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
      try {
        const res = await client.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: handles.map((h, i) => ({ Id: `v${i}`, ReceiptHandle: h, VisibilityTimeout: seconds })),
          }),
        );
        const ok = new Set((res.Successful ?? []).map((s) => s.Id));
        for (const bad of res.Failed ?? []) failed.set(handles[Number(bad.Id?.slice(1))] ?? '', bad.Code ?? 'unknown');
        handles.forEach((h, i) => {
          if (!ok.has(`v${i}`) && !failed.has(h)) failed.set(h, 'NoResultForEntry');
        });
      } catch (err) {
        const code = errorCode(err);
        for (const h of handles) failed.set(h, code);
      }
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
