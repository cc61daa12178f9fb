import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditSink } from '../../core/audit/types.ts';
import { hashId } from '../../core/log/logger.ts';
import type { ApplyLedger } from '../../core/state/applyLedger.ts';
import { withRetry, type RetryOptions, type SignalWireApi } from './client.ts';
import { SmsError } from './errors.ts';
import { buildRedactionJob, type PendingSendJob } from './redactionJob.ts';
import type { SmsSendClaims } from './sendClaims.ts';
import type { EnqueueRedaction, HandlerResult, SmsConfig } from './types.ts';

/**
 * How long after a send began its create call may still be running (the create with its retries; the
 * same bound as an Idempotency-Key's lease, sendClaims.ts). A pending job does not look for the
 * message before then.
 */
export const SEND_SETTLE_SECONDS = 60;

/** Messages created this long before the send began get a fallback job too (clock skew between the app and SignalWire). */
const CLOCK_SKEW_SECONDS = 300;
/** The send's own message was created within this of the send's settle time (skew between the app and SignalWire). */
const ATTRIBUTION_SKEW_SECONDS = 30;
/** Pages of the number's messages read at most (newest first). */
const MAX_PAGES = 10;

// The number (and an Idempotency-Key's claim, which holds the client's key) are sealed with AES-256-GCM under a
// key derived from the app's hashing key, so the queue never holds them in clear; only the app, which holds that
// key, can open them.
function sealingKey(hmacKey: string): Buffer {
  return Buffer.from(hkdfSync('sha256', hmacKey, 'care-relay', 'sms pending send: sealed fields v1', 32));
}

/** Seals a field of a {@link PendingSendJob}: `v1.` + base64url(iv, ciphertext, tag). */
export function seal(hmacKey: string, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(hmacKey), iv);
  const sealed = Buffer.concat([iv, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `v1.${sealed.toString('base64url')}`;
}

/** Opens a field sealed by {@link seal}; throws CR_SMS_JOB_INVALID when it was not sealed with this key or was altered. */
export function unseal(hmacKey: string, sealed: string): string {
  const bytes = Buffer.from(sealed.slice(3), 'base64url');
  if (!sealed.startsWith('v1.') || bytes.length < 12 + 16 + 1) throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: a sealed field is malformed');
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(hmacKey), bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
  } catch (err) {
    throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: a sealed field does not open with this app\'s hashing key (altered, or sealed under another key)', { cause: err });
  }
}

/** Builds the job enqueued before a send's create call. */
export function buildPendingJob(hmacKey: string, send: { id: string; to: string; body: string; actor: string; claim?: { pk: string; lease: number } }, after: Date, now: Date): PendingSendJob {
  return {
    v: 1, trigger: 'pending', send: send.id, toSealed: seal(hmacKey, send.to), bodyHash: hashId(hmacKey, send.body), actor: send.actor,
    ...(send.claim ? { claim: { pkSealed: seal(hmacKey, send.claim.pk), lease: send.claim.lease } } : {}), after: after.toISOString(), enqueuedAt: now.toISOString(),
  };
}

/** Dependencies of {@link handlePendingJob}. */
export interface PendingJobDeps {
  config: SmsConfig;
  api: SignalWireApi;
  /** Puts the fallback job of each message found on the queue. */
  enqueue: EnqueueRedaction;
  /** Sends whose fallback job is on the queue and `sms.sent` line written (`smssend#<send id>`, by the sender): nothing to find. */
  settled: Pick<ApplyLedger, 'isApplied'>;
  /** Idempotency-Key claims: a keyed send's claim is answered with the sid of the message found. */
  claims: Pick<SmsSendClaims, 'recovered'>;
  /** Audit trail: the `sms.sent` line of the message found, marked recovered. */
  audit: AuditSink;
  now: () => Date;
  logger: Logger;
  retry: RetryOptions;
}

interface ListedMessage {
  sid: string;
  status: string;
  body: string | null;
  numMedia: string;
  dateCreated: Date | null;
}

/**
 * A pending send's job: done at once when the send marked itself settled (its fallback job is on the
 * queue); re-delayed while its create call may still run; else it lists the number's messages from the
 * sending number, newest first, and enqueues a fallback job for each created since the send began (a
 * process stopped between the create call and its fallback job, or that job could not be enqueued).
 * Other messages of the relay to the number in that time get a job too: jobs are idempotent.
 */
export async function handlePendingJob(deps: PendingJobDeps, job: PendingSendJob): Promise<HandlerResult> {
  const { config } = deps;
  // A mark that cannot be read counts as missing: looking the message up again is harmless.
  if (await deps.settled.isApplied(job.send).catch(() => false)) return { status: 'done' };
  const after = Date.parse(job.after);
  const settleLeft = (after - deps.now().getTime()) / 1000 + SEND_SETTLE_SECONDS;
  if (settleLeft > 0) return { status: 'retry', reason: 'send-not-settled', afterSeconds: Math.max(1, Math.ceil(settleLeft)) };
  const to = unseal(config.hmacKey, job.toSealed);
  const claimPk = job.claim ? unseal(config.hmacKey, job.claim.pkSealed) : undefined;
  if (claimPk !== undefined && !claimPk.startsWith('smsidem#')) throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: the sealed claim is not an Idempotency-Key claim');
  const since = after - CLOCK_SKEW_SECONDS * 1000;
  const found: ListedMessage[] = [];
  let page = (await withRetry('messages.page', () => deps.api.messages.page({ to, from: config.fromNumber, pageSize: 50 }), deps.retry)) as unknown as { instances: ListedMessage[]; nextPageUrl?: string };
  for (let pages = 1; ; pages++) {
    const recent = page.instances.filter((m) => m.dateCreated === null || m.dateCreated.getTime() >= since);
    found.push(...recent);
    // Newest first: a page with an older message ends the walk.
    if (recent.length < page.instances.length || !page.nextPageUrl || pages >= MAX_PAGES) break;
    const next = page.nextPageUrl;
    page = (await withRetry('messages.page', () => deps.api.messages.getPage(next), deps.retry)) as unknown as typeof page;
  }
  // At once: each job waits itself while its message is in progress or in the `sent` grace period.
  for (const m of found) await deps.enqueue(buildRedactionJob(m.sid, 'fallback', deps.now(), m.dateCreated ?? new Date(after)), 0);
  // The send's own message: created between the send's start and its settle time, with its text (or already blanked).
  // Only one such message is taken as the send's; with more, none is (another send to the number then).
  const lo = after - ATTRIBUTION_SKEW_SECONDS * 1000;
  const hi = after + (SEND_SETTLE_SECONDS + ATTRIBUTION_SKEW_SECONDS) * 1000;
  const own = found.filter((m) => {
    const t = m.dateCreated?.getTime();
    return t !== undefined && t >= lo && t <= hi && (!m.body || hashId(config.hmacKey, m.body) === job.bodyHash);
  });
  deps.logger.info({ send: job.send, found: found.length, own: own.length }, 'sms pending send checked: fallback jobs enqueued for its messages');
  if (own.length === 1) await recover(deps, job, to, own[0]!, claimPk);
  return { status: 'done' };
}

// The message of a send that stopped before its `sms.sent` line: the key's claim answers its sid, and the line is written, marked recovered.
async function recover(deps: PendingJobDeps, job: PendingSendJob, to: string, m: ListedMessage, claimPk: string | undefined): Promise<void> {
  const sentAt = (m.dateCreated ?? new Date(job.after)).toISOString();
  if (job.claim && claimPk) {
    // A claim already `sent` (the send recorded it before it stopped), or gone, stays as it is (a failed condition).
    await deps.claims.recovered({ pk: claimPk, lease: job.claim.lease }, { sid: m.sid, status: m.status, sentAt });
  }
  const media = Number(m.numMedia);
  await deps.audit.record({
    action: 'sms.sent', actor: job.actor, resourceType: 'sms', resourceId: hashId(deps.config.hmacKey, m.sid), outcome: 'success',
    details: { toHash: hashId(deps.config.hmacKey, to), media: Number.isFinite(media) ? media : 0, recovered: true, copy: true },
  });
}
