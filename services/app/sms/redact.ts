import { classifySignalWireError, withRetry, type RetryOptions, type SignalWireApi } from './client.ts';
import { SmsError } from './errors.ts';
import { FINAL_STATUSES } from './statusMap.ts';
import type { RedactionMode } from './types.ts';

/** What redaction needs to know about a message (from a fetch or a list page). */
export interface MessageSnapshot {
  /** Message sid. */
  sid: string;
  /** Current status. */
  status: string;
  /** Current body (`''` once redacted). */
  body: string;
  /** When it was sent, or created when not yet sent. */
  sentAt: Date | undefined;
}

/** Result of one redaction attempt. */
export type RedactOutcome =
  | { kind: 'redacted'; mediaDeleted: number; bodyBlanked: boolean; messageDeleted: boolean }
  | { kind: 'already-redacted' }
  | { kind: 'not-found'; mediaDeleted: number }
  | { kind: 'in-progress'; status: string }
  | { kind: 'grace'; remainingSeconds: number };

/** Dependencies of {@link redactMessage}. */
export interface RedactDeps {
  /** SDK client. */
  api: SignalWireApi;
  /** Blank only, or blank then delete. */
  mode: RedactionMode;
  /** A `sent` message counts as final this long after sending. */
  sentGraceSeconds: number;
  /** Clock. */
  now: () => Date;
  /** Retry policy of each call. */
  retry: RetryOptions;
  /** When true nothing is changed; the outcome says what would be done. */
  dryRun?: boolean;
}

interface SdkMessage { sid: string; status: string; body: string | null; dateSent?: Date | null; dateCreated?: Date | null }
interface SdkPage<T> { instances: T[]; nextPageUrl?: string }

/** A snapshot of an SDK message instance. */
export function snapshotOf(m: SdkMessage): MessageSnapshot {
  const sentAt = m.dateSent ?? m.dateCreated ?? undefined;
  return { sid: m.sid, status: m.status, body: m.body ?? '', sentAt: sentAt && !Number.isNaN(sentAt.getTime()) ? sentAt : undefined };
}

/** Statuses during which SignalWire refuses to redact or delete. */
export function isInProgress(status: string): boolean {
  return !FINAL_STATUSES.has(status) && status !== 'sent';
}

async function listMediaSids(deps: RedactDeps, sid: string): Promise<string[]> {
  const media = deps.api.messages(sid).media;
  const out: string[] = [];
  let page = (await withRetry('media.list', () => media.page({ pageSize: 100 }), deps.retry)) as unknown as SdkPage<{ sid: string }>;
  for (;;) {
    out.push(...page.instances.map((i) => i.sid));
    const next = page.nextPageUrl;
    if (!next) return out;
    page = (await withRetry('media.list', () => media.getPage(next), deps.retry)) as unknown as SdkPage<{ sid: string }>;
  }
}

/** Deletes every media item of `sid` (gone already is fine), then lists again and throws if any is left. */
export async function deleteAllMedia(deps: RedactDeps, sid: string): Promise<number> {
  const sids = await listMediaSids(deps, sid);
  if (deps.dryRun) return sids.length;
  let deleted = 0;
  for (const mediaSid of sids) {
    try {
      await withRetry('media.remove', () => deps.api.messages(sid).media(mediaSid).remove(), deps.retry);
      deleted++;
    } catch (err) {
      if (classifySignalWireError(err).kind !== 'not-found') throw err;
    }
  }
  const left = await listMediaSids(deps, sid);
  if (left.length > 0) throw new SmsError('CR_SMS_MEDIA_REMAINS', `${left.length} media item(s) still listed after deletion`);
  return deleted;
}

/**
 * Redacts one message in the order SignalWire requires: list and delete every media item,
 * confirm none is left, blank the body, then delete the message when the mode says so.
 * In-progress and within-grace messages are left alone; repeated calls are harmless.
 * Transient failures are thrown (after the retry policy) for the caller to re-delay.
 */
export async function redactMessage(deps: RedactDeps, sid: string, known?: MessageSnapshot): Promise<RedactOutcome> {
  let msg = known;
  if (!msg) {
    try {
      msg = snapshotOf((await withRetry('message.fetch', () => deps.api.messages(sid).fetch(), deps.retry)) as unknown as SdkMessage);
    } catch (err) {
      if (classifySignalWireError(err).kind !== 'not-found') throw err;
      // Deleting a message leaves its media: clean what may remain under the sid.
      let mediaDeleted = 0;
      try {
        mediaDeleted = await deleteAllMedia(deps, sid);
      } catch (mediaErr) {
        if (classifySignalWireError(mediaErr).kind !== 'not-found') throw mediaErr;
      }
      return { kind: 'not-found', mediaDeleted };
    }
  }
  if (isInProgress(msg.status)) return { kind: 'in-progress', status: msg.status };
  if (msg.status === 'sent') {
    const elapsed = msg.sentAt ? (deps.now().getTime() - msg.sentAt.getTime()) / 1000 : Infinity;
    if (elapsed < deps.sentGraceSeconds) return { kind: 'grace', remainingSeconds: Math.max(1, Math.ceil(deps.sentGraceSeconds - elapsed)) };
  }
  try {
    const mediaDeleted = await deleteAllMedia(deps, sid);
    const bodyBlanked = msg.body !== '';
    if (bodyBlanked && !deps.dryRun) await withRetry('message.redact', () => deps.api.messages(sid).update({ body: '' }), deps.retry);
    let messageDeleted = false;
    if (deps.mode === 'delete' && !deps.dryRun) {
      try {
        await withRetry('message.remove', () => deps.api.messages(sid).remove(), deps.retry);
        messageDeleted = true;
      } catch (err) {
        if (classifySignalWireError(err).kind !== 'not-found') throw err;
      }
    } else if (deps.mode === 'delete') {
      messageDeleted = true;
    }
    if (mediaDeleted === 0 && !bodyBlanked && !messageDeleted) return { kind: 'already-redacted' };
    return { kind: 'redacted', mediaDeleted, bodyBlanked, messageDeleted };
  } catch (err) {
    // The status moved back under us (or the fetch raced a retry): SignalWire refuses; try later.
    if (classifySignalWireError(err).kind === 'in-progress') return { kind: 'in-progress', status: msg.status };
    throw err;
  }
}
