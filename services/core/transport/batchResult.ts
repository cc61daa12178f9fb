// "Never assume success", written once: how every SQS batch call (send, delete, change
// visibility) reads SQS's answer into one outcome per entry it sent.
import { errorCode, isPermanentSqsError } from './errors.ts';

/** The outcome of one entry of a batch call: accepted, or failed with a PHI-free code. */
export type EntryOutcome = { ok: true; messageId?: string } | { ok: false; code: string; retryable: boolean };

/** The parts of an SQS batch response this reads (SendMessageBatch, DeleteMessageBatch, ChangeMessageVisibilityBatch). */
export interface BatchResponse {
  /** Entries SQS accepted. */
  Successful?: readonly { Id?: string | undefined; MessageId?: string | undefined }[] | undefined;
  /** Entries SQS refused. */
  Failed?: readonly { Id?: string | undefined; Code?: string | undefined; SenderFault?: boolean | undefined }[] | undefined;
}

/** Code of an entry SQS did not mention at all. */
export const NO_RESULT_FOR_ENTRY = 'NoResultForEntry';

/** SQS error codes that say "too fast, later": retried even when SQS marks them as the sender's fault. */
const THROTTLING = /Throttl|OverLimit|RequestThrottled|KmsThrottled/i;

/** True when a failed entry with this code and fault may succeed if sent again. */
export function isRetryableEntry(code: string, senderFault: boolean | undefined, permanentCodes?: RegExp): boolean {
  if (permanentCodes?.test(code)) return false;
  if (THROTTLING.test(code)) return true;
  return senderFault !== true;
}

/**
 * Reads an SQS batch response for the entry ids that were sent, in their order:
 * - an id in `Successful` only is ok (with its MessageId when SQS gave one);
 * - an id in `Failed` is failed, even when it is in `Successful` too (never assume success);
 * - an id in neither is failed and retryable (`NoResultForEntry`);
 * - an id SQS answered that was not sent is ignored.
 * A failed entry is retryable when throttled, or when not the sender's fault, unless its
 * code matches `permanentCodes` (e.g. a stale receipt handle, which no retry can fix).
 */
export function readBatchResult(ids: readonly string[], response: BatchResponse | undefined, permanentCodes?: RegExp): EntryOutcome[] {
  const index = new Map(ids.map((id, i) => [id, i] as const));
  const out: (EntryOutcome | undefined)[] = ids.map(() => undefined);
  for (const bad of response?.Failed ?? []) {
    const i = bad.Id === undefined ? undefined : index.get(bad.Id);
    if (i === undefined || out[i]?.ok === false) continue;
    const code = bad.Code || 'unknown';
    out[i] = { ok: false, code, retryable: isRetryableEntry(code, bad.SenderFault, permanentCodes) };
  }
  for (const ok of response?.Successful ?? []) {
    const i = ok.Id === undefined ? undefined : index.get(ok.Id);
    if (i === undefined || out[i] !== undefined) continue;
    out[i] = ok.MessageId ? { ok: true, messageId: ok.MessageId } : { ok: true };
  }
  return out.map((o) => o ?? { ok: false, code: NO_RESULT_FOR_ENTRY, retryable: true });
}

/** The outcome of every entry of a batch call that failed as a whole (SQS unreachable, request refused). */
export function failedBatch(count: number, err: unknown): EntryOutcome[] {
  const failure: EntryOutcome = { ok: false, code: errorCode(err), retryable: !isPermanentSqsError(err) };
  return Array.from({ length: count }, () => failure);
}
