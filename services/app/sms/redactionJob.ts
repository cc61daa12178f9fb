import { SmsError } from './errors.ts';

/** Why a job was enqueued. */
export type RedactionTrigger = 'fallback' | 'status' | 'sweep';

/**
 * A job enqueued before a send's create call, when no sid exists yet (pendingSend.ts): once the send
 * is settled (its create call over), it finds the send's message at SignalWire by number and time and
 * enqueues its fallback job, unless the send marked itself done. It names the number only sealed.
 */
export interface PendingSendJob {
  /** Format version: 1. */
  v: 1;
  trigger: 'pending';
  /** The send's own id (random; the key of its `smssend#` mark). */
  send: string;
  /** The destination number, sealed with a key derived from the app's hashing key (never in clear). */
  toSealed: string;
  /** The text's keyed hash (hashId): tells the send's message from others to the number while its body is not yet blanked. */
  bodyHash: string;
  /** Who asked for the send (a token name), for the `sms.sent` line written if the message is found. */
  actor: string;
  /** The send's Idempotency-Key claim, if it had a key (its item key sealed, as the number): answered with the message's sid once found. */
  claim?: { pkSealed: string; lease: number };
  /** When the send began, before its create call (RFC 3339). */
  after: string;
  /** When this job was enqueued (RFC 3339). */
  enqueuedAt: string;
}

/** Any job on the `app-sms-redaction` queue. */
export type SmsQueueJob = RedactionJob | PendingSendJob;

/** A job on the `app-sms-redaction` queue: no PHI, only the message sid and times. */
export interface RedactionJob {
  /** Format version: 1. */
  v: 1;
  /** SignalWire message sid. */
  sid: string;
  /** When this job was enqueued (RFC 3339). */
  enqueuedAt: string;
  /** When the message was first seen, i.e. sent (RFC 3339); the redaction window counts from here. */
  firstSeenAt: string;
  /** What enqueued it. */
  trigger: RedactionTrigger;
  /** Status that triggered it, for a status job. */
  status?: string;
}

const SID = /^[A-Za-z0-9-]{8,64}$/;

/** Builds a job for `sid`. */
export function buildRedactionJob(sid: string, trigger: RedactionTrigger, now: Date, firstSeenAt?: Date, status?: string): RedactionJob {
  return { v: 1, sid, enqueuedAt: now.toISOString(), firstSeenAt: (firstSeenAt ?? now).toISOString(), trigger, ...(status ? { status } : {}) };
}

/** The queue message id of a job (the producer's batch entry id; no PHI). */
export function jobId(job: SmsQueueJob): string {
  return job.trigger === 'pending' ? `pending:${job.send}` : `${job.sid}:${job.trigger}:${job.enqueuedAt}`;
}

const SEND_ID = /^[A-Za-z0-9-]{8,64}$/;
const SEALED = /^v1\.[A-Za-z0-9_-]{20,800}$/;

// The JSON object of a job of version 1, or CR_SMS_JOB_INVALID.
function jobObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected JSON', { cause: err });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected a JSON object');
  const j = value as Record<string, unknown>;
  if (j.v !== 1) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected v 1');
  return j;
}

function requireTimes(j: Record<string, unknown>, fields: readonly string[], what: string): void {
  for (const field of fields) {
    const value = j[field];
    if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw new SmsError('CR_SMS_JOB_INVALID', `${what}: expected ${field} as an RFC 3339 time`);
  }
}

function redactionJobOf(j: Record<string, unknown>): RedactionJob {
  if (typeof j.sid !== 'string' || !SID.test(j.sid)) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected a message sid');
  requireTimes(j, ['enqueuedAt', 'firstSeenAt'], 'redaction job');
  if (j.trigger !== 'fallback' && j.trigger !== 'status' && j.trigger !== 'sweep') throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected trigger fallback, status or sweep');
  if (j.status !== undefined && (typeof j.status !== 'string' || !/^[a-z_-]{1,32}$/.test(j.status))) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected status as a lower-case status name');
  return j as unknown as RedactionJob;
}

function pendingJobOf(j: Record<string, unknown>): PendingSendJob {
  if (typeof j.send !== 'string' || !SEND_ID.test(j.send)) throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: expected a send id');
  if (typeof j.toSealed !== 'string' || !SEALED.test(j.toSealed)) throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: expected a sealed number');
  if (typeof j.bodyHash !== 'string' || !/^[0-9a-f]{16}$/.test(j.bodyHash)) throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: expected a body hash');
  if (typeof j.actor !== 'string' || j.actor.length === 0 || j.actor.length > 200) throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: expected an actor');
  const claim = j.claim as { pkSealed?: unknown; lease?: unknown } | undefined;
  if (claim !== undefined && (typeof claim !== 'object' || claim === null || typeof claim.pkSealed !== 'string' || !SEALED.test(claim.pkSealed) || !Number.isSafeInteger(claim.lease))) {
    throw new SmsError('CR_SMS_JOB_INVALID', 'pending send job: expected claim as {pkSealed, lease}');
  }
  requireTimes(j, ['after', 'enqueuedAt'], 'pending send job');
  return j as unknown as PendingSendJob;
}

/** Parses and validates any job of the queue (a redaction job, or a pending send's); throws SmsError CR_SMS_JOB_INVALID naming what is wrong. */
export function parseSmsJob(text: string): SmsQueueJob {
  const j = jobObject(text);
  return j.trigger === 'pending' ? pendingJobOf(j) : redactionJobOf(j);
}
