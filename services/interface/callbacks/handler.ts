import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../../core/audit/types.ts';
import { backoffDelay } from '../../core/transport/backoff.ts';
import type { HandlerResult, MessageHandler } from '../../core/transport/consumerTypes.ts';
import { callbackPayload, parseCallbackJob, type CallbackJob } from './job.ts';
import type { CallbackLedger } from './ledger.ts';
import type { CallbackMetrics } from './metrics.ts';
import type { CallbackPoster } from './post.ts';
import { signWebhook } from './sign.ts';
import type { CallbackTargets } from './targets.ts';

/** Dependencies of {@link createCallbackHandler}. */
export interface CallbackHandlerOptions {
  /** The partners' callbacks (reloadable). */
  targets: CallbackTargets;
  /** Sends one attempt. */
  post: CallbackPoster;
  /** Attempts counted fleet-wide; a finished callback is never sent again. */
  ledger: CallbackLedger;
  /** Audit trail: delivered, stopped, dead-lettered, dropped. */
  audit: AuditSink;
  /** Logger: ids, status codes and reasons only. */
  logger: Logger;
  /** Outcome counters. */
  metrics: CallbackMetrics;
  /** PARTNER_CALLBACK_MAX_ATTEMPTS: attempts before the job is dead-lettered. */
  maxAttempts: number;
  /** Retry backoff: first delay and cap, seconds (PARTNER_CALLBACK_BACKOFF_SECONDS, PARTNER_CALLBACK_BACKOFF_MAX_SECONDS). */
  backoff: { baseSeconds: number; maxSeconds: number };
  /** Random source in [0, 1) for the jitter (tests). */
  random?: () => number;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** 410 Gone: the receiver asks the sender to stop (Standard Webhooks). */
const GONE = 410;

/** The delay before attempt `attempt + 1`, whole seconds: capped exponential backoff with jitter (at least 1). */
export function callbackRetryDelay(attempt: number, backoff: { baseSeconds: number; maxSeconds: number }, random?: () => number): number {
  const seconds = backoffDelay(attempt, { base: backoff.baseSeconds, max: backoff.maxSeconds, ...(random ? { random } : {}) });
  return Math.max(1, Math.ceil(seconds));
}

/**
 * Delivers one queued status change to its partner's callback URL, signed (Standard Webhooks)
 * under the job's stable webhook id with a fresh timestamp. 2xx: done. 410: the partner
 * asked to stop: done, audited as stopped. Anything else (another status, a redirect, a timeout,
 * no connection): retried with backoff, until the attempt that reaches PARTNER_CALLBACK_MAX_ATTEMPTS,
 * which dead-letters the job (audited). A job whose partner no longer has a callback is dropped (audited).
 * Attempts are counted in the state table (not SQS receives), one at a time per callback, and a
 * callback already delivered or stopped is acknowledged without a request (duplicate jobs, redeliveries),
 * its outcome audited again with `copy: true`.
 */
export function createCallbackHandler(options: CallbackHandlerOptions): MessageHandler {
  const now = options.now ?? Date.now;
  const log = options.logger;
  const record = (job: CallbackJob, action: AuditEvent['action'], outcome: AuditEvent['outcome'], details: Record<string, string | number | boolean>): Promise<void> =>
    options.audit.record({
      action,
      actor: 'interface',
      resourceType: 'submission',
      resourceId: job.submissionId,
      outcome,
      details: { partner: job.partner, webhookId: job.webhookId, status: job.status, ...details },
    });

  return async (message, signal): Promise<HandlerResult> => {
    let job: CallbackJob;
    try {
      job = parseCallbackJob(message.body);
    } catch {
      options.metrics.inc('invalid');
      return { status: 'quarantine', reason: 'CR_CALLBACK_JOB_INVALID' };
    }
    const target = options.targets.get(job.partner);
    if (!target) {
      options.metrics.inc('dropped');
      log.warn({ webhookId: job.webhookId, submissionId: job.submissionId, partner: job.partner, reason: 'CR_CALLBACK_NOT_CONFIGURED' }, 'partner callback dropped: the partner has no callback now');
      await record(job, 'callback.dropped', 'failure', { reason: 'CR_CALLBACK_NOT_CONFIGURED' });
      return { status: 'done' };
    }
    const start = await options.ledger.begin(job.webhookId);
    if (start.status === 'finished') {
      options.metrics.inc('duplicate');
      log.info({ webhookId: job.webhookId, submissionId: job.submissionId, state: start.state }, 'partner callback already finished; not sent again');
      // The ledger is written before the outcome's line, and a crash (or a failed audit write) in
      // between leaves the outcome without one: the copy writes it again, marked `copy`.
      const httpStatus: Record<string, number> = start.httpStatus === undefined ? {} : { httpStatus: start.httpStatus };
      if (start.state === 'delivered') await record(job, 'callback.delivered', 'success', { ...httpStatus, copy: true });
      else if (start.state === 'stopped') await record(job, 'callback.stopped', 'failure', { ...httpStatus, reason: `CR_CALLBACK_HTTP_${GONE}`, copy: true });
      return { status: 'done' };
    }
    if (start.status === 'busy') return { status: 'retry', reason: 'CR_CALLBACK_IN_PROGRESS', afterSeconds: start.retryAfterSeconds };
    const attempt = start.attempt;
    const ids = { webhookId: job.webhookId, submissionId: job.submissionId, partner: job.partner, attempt };
    const body = callbackPayload(job);
    const headers = signWebhook({ id: job.webhookId, timestamp: now() / 1000, body, keys: target.secrets.keys() });
    const started = performance.now();
    const result = await options.post(target.url, headers, body, signal);
    options.metrics.observeAttempt((performance.now() - started) / 1000);

    if (result.kind === 'answered' && result.status >= 200 && result.status < 300) {
      await options.ledger.finish(job.webhookId, 'delivered', result.status);
      options.metrics.inc('delivered');
      log.info({ ...ids, httpStatus: result.status }, 'partner callback delivered');
      await record(job, 'callback.delivered', 'success', { httpStatus: result.status, attempt });
      return { status: 'done' };
    }
    if (result.kind === 'answered' && result.status === GONE) {
      await options.ledger.finish(job.webhookId, 'stopped', GONE);
      options.metrics.inc('stopped');
      log.warn({ ...ids, httpStatus: GONE }, 'partner callback stopped: the receiver answered 410 Gone');
      await record(job, 'callback.stopped', 'failure', { httpStatus: GONE, reason: `CR_CALLBACK_HTTP_${GONE}`, attempt });
      return { status: 'done' };
    }
    const reason = result.kind === 'answered' ? `CR_CALLBACK_HTTP_${result.status}` : result.reason;
    if (signal.aborted || attempt < options.maxAttempts) await options.ledger.abandon(job.webhookId);
    if (signal.aborted) return { status: 'retry', reason };
    if (attempt >= options.maxAttempts) {
      await options.ledger.failed(job.webhookId, 'CR_CALLBACK_ATTEMPTS_EXHAUSTED');
      options.metrics.inc('dead_lettered');
      log.error({ ...ids, reason }, 'partner callback dead-lettered: attempts exhausted');
      await record(job, 'callback.dead-lettered', 'failure', { reason: 'CR_CALLBACK_ATTEMPTS_EXHAUSTED', lastReason: reason, attempt });
      return { status: 'dead-letter', reason: 'CR_CALLBACK_ATTEMPTS_EXHAUSTED' };
    }
    const afterSeconds = callbackRetryDelay(attempt, options.backoff, options.random);
    options.metrics.inc('retried');
    log.warn({ ...ids, reason, afterSeconds }, 'partner callback failed; retrying');
    return { status: 'retry', reason, afterSeconds };
  };
}
