import { SmsError } from './errors.ts';

/** Why a job was enqueued. */
export type RedactionTrigger = 'fallback' | 'status' | 'sweep';

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

/** Parses and validates a job body; throws SmsError CR_SMS_JOB_INVALID naming what is wrong. */
export function parseRedactionJob(text: string): RedactionJob {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected JSON', { cause: err });
  }
  const j = value as Partial<RedactionJob> | null;
  if (!j || typeof j !== 'object') throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected a JSON object');
  if (j.v !== 1) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected v 1');
  if (typeof j.sid !== 'string' || !SID.test(j.sid)) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected a message sid');
  for (const field of ['enqueuedAt', 'firstSeenAt'] as const) {
    if (typeof j[field] !== 'string' || Number.isNaN(Date.parse(j[field]))) throw new SmsError('CR_SMS_JOB_INVALID', `redaction job: expected ${field} as an RFC 3339 time`);
  }
  if (j.trigger !== 'fallback' && j.trigger !== 'status' && j.trigger !== 'sweep') throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected trigger fallback, status or sweep');
  if (j.status !== undefined && (typeof j.status !== 'string' || !/^[a-z_-]{1,32}$/.test(j.status))) throw new SmsError('CR_SMS_JOB_INVALID', 'redaction job: expected status as a lower-case status name');
  return j as RedactionJob;
}
