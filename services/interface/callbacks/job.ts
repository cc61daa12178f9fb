import { RelayError } from '../../core/errors/relayError.ts';
import type { SubmissionStatus, SubmissionStatusEvent } from '../status/events.ts';
import { CALLBACK_REASONS } from './reasons.ts';

const STATUSES: readonly SubmissionStatus[] = ['accepted', 'queued', 'held', 'acknowledged', 'rejected', 'dead-lettered'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PARTNER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const REASON = /^CR_[A-Z0-9_]{1,96}$/;

/** A job on the `interface-partner-callbacks` queue: ids, a status and a code, never PHI. */
export interface CallbackJob {
  /** Format version: 1. */
  v: 1;
  /** The Standard Webhooks message id, stable across attempts (see {@link webhookIdOf}). */
  webhookId: string;
  /** The partner whose callback receives it. */
  partner: string;
  /** The submission (envelope) id. */
  submissionId: string;
  /** Its new status. */
  status: SubmissionStatus;
  /** `CR_*` reason code for `rejected` and `dead-lettered`. */
  reasonCode?: string;
  /** RFC 3339 time of the status change. */
  at: string;
}

/**
 * The webhook id of a status change: derived from the submission and the status, so the same
 * change published twice (two instances, a replay) reaches the partner under one id that its
 * receiver dedupes on.
 */
export function webhookIdOf(submissionId: string, status: SubmissionStatus): string {
  return `msg_${submissionId}_${status}`;
}

function invalid(what: string): RelayError {
  return new RelayError('CR_CALLBACK_JOB_INVALID', `callback job: ${what}`, { title: CALLBACK_REASONS.CR_CALLBACK_JOB_INVALID.title });
}

/** The job for a status change; throws CR_CALLBACK_JOB_INVALID when the event carries anything but ids and codes. */
export function buildCallbackJob(event: SubmissionStatusEvent): CallbackJob {
  return checkCallbackJob({
    v: 1,
    webhookId: webhookIdOf(event.submissionId, event.status),
    partner: event.partner,
    submissionId: event.submissionId,
    status: event.status,
    ...(event.reasonCode === undefined ? {} : { reasonCode: event.reasonCode }),
    at: new Date(event.at).toISOString(),
  });
}

function checkCallbackJob(j: Partial<CallbackJob>): CallbackJob {
  if (j.v !== 1) throw invalid('expected v 1');
  if (typeof j.submissionId !== 'string' || !UUID.test(j.submissionId)) throw invalid('expected submissionId as a UUID');
  if (typeof j.status !== 'string' || !STATUSES.includes(j.status)) throw invalid(`expected status as one of ${STATUSES.join(', ')}`);
  if (j.webhookId !== webhookIdOf(j.submissionId, j.status)) throw invalid('expected the webhookId of its submission and status');
  if (typeof j.partner !== 'string' || !PARTNER.test(j.partner)) throw invalid('expected a partner id');
  if (j.reasonCode !== undefined && (typeof j.reasonCode !== 'string' || !REASON.test(j.reasonCode))) throw invalid('expected reasonCode as a CR_* code');
  if (typeof j.at !== 'string' || Number.isNaN(Date.parse(j.at))) throw invalid('expected at as an RFC 3339 time');
  const keys = Object.keys(j).filter((k) => !['v', 'webhookId', 'partner', 'submissionId', 'status', 'reasonCode', 'at'].includes(k));
  if (keys.length > 0) throw invalid('expected no other fields');
  return j as CallbackJob;
}

/** Parses and checks a job body from the queue; throws CR_CALLBACK_JOB_INVALID naming what is wrong. */
export function parseCallbackJob(text: string): CallbackJob {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid('expected JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid('expected a JSON object');
  return checkCallbackJob(value as Partial<CallbackJob>);
}

/**
 * The callback body the partner receives, in the Standard Webhooks payload shape: `type`
 * (`submission.<status>`), `timestamp` (the time of the change) and `data` with the submission
 * id, the status and, for `rejected` and `dead-lettered`, the reason code. Nothing else: no
 * partner payload, no name, no body.
 */
export function callbackPayload(job: CallbackJob): string {
  return JSON.stringify({
    type: `submission.${job.status}`,
    timestamp: job.at,
    data: { submissionId: job.submissionId, status: job.status, ...(job.reasonCode === undefined ? {} : { reasonCode: job.reasonCode }) },
  });
}
