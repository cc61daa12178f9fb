import type { Logger } from 'pino';
import { AuditError } from '../../core/audit/errors.ts';
import type { AuditSink } from '../../core/audit/types.ts';
import { hashId, silentLogger } from '../../core/log/logger.ts';
import type { ApplyLedger } from '../../core/state/applyLedger.ts';
import { DynamoCallError } from '../../core/state/dynamoJson.ts';
import { StateError } from '../../core/state/errors.ts';
import { TransportError } from '../../core/transport/errors.ts';
import { classifySignalWireError, type RetryOptions, type SignalWireApi } from './client.ts';
import { SMS_ERRORS } from './errors.ts';
import { redactMessage } from './redact.ts';
import { handlePendingJob } from './pendingSend.ts';
import { parseSmsJob, type PendingSendJob, type RedactionJob } from './redactionJob.ts';
import type { SmsSendClaims } from './sendClaims.ts';
import { nullSmsMetrics, type EnqueueRedaction, type HandlerResult, type RedactionQueueMessage, type SmsConfig, type SmsMetrics } from './types.ts';

/** Dependencies of {@link createRedactionHandler}. */
export interface RedactionWorkerDeps {
  /** SMS configuration (mode, grace, window, hashing key). */
  config: SmsConfig;
  /** SDK client. */
  api: SignalWireApi;
  /** Audit trail. */
  audit: AuditSink;
  /**
   * Redactions whose `sms.redacted` line was written (keyed by the SID's hash, shared by every app
   * instance): a job that finds its message already redacted and no mark here writes the line, marked
   * copy. A kill between the redaction and its line must not leave the redaction without one.
   */
  audited: Pick<ApplyLedger, 'applied' | 'isApplied'>;
  /** Puts jobs on the queue: a pending send's job enqueues the fallback job of each message it finds. */
  enqueue: EnqueueRedaction;
  /** Sends whose fallback job is on the queue (`smssend#<send id>`, the sender's marks): their pending job has nothing to find. */
  settled: Pick<ApplyLedger, 'isApplied'>;
  /** Idempotency-Key claims: a pending send job that finds the send's message answers its key with the sid. */
  claims: Pick<SmsSendClaims, 'recovered'>;
  /** Logger (never given bodies or numbers). */
  logger?: Logger;
  /** Counters. */
  metrics?: SmsMetrics;
  /** Clock. */
  now?: () => Date;
  /** Retry policy of the SignalWire calls within one attempt. */
  retry?: RetryOptions;
}

// Why a job's attempt failed. A failed audit write is the trail's, not SignalWire's: the retry writes the line
// (a copy, once the message is found redacted). The queue and the state table fail a pending send's job too.
function failureReason(err: unknown): string {
  const c = classifySignalWireError(err);
  return err instanceof AuditError ? 'audit-write-failed'
    : err instanceof TransportError ? 'queue-unavailable'
    : err instanceof StateError || err instanceof DynamoCallError ? 'state-table-unavailable'
    : (err as { code?: unknown }).code === SMS_ERRORS.CR_SMS_MEDIA_REMAINS.code ? 'media-remains'
    : c.status !== undefined ? `signalwire-${c.status}`
    : 'signalwire-unreachable';
}

/** SQS caps visibility changes; we never ask more than 15 minutes at a time. */
const MAX_DELAY_SECONDS = 900;

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.ceil(n)));

/**
 * The transport consumer handler of `app-sms-redaction`: redacts the job's message, re-delays
 * while it is in progress or within the `sent` grace period or SignalWire fails transiently,
 * and dead-letters it once the redaction window has passed.
 */
export function createRedactionHandler(deps: RedactionWorkerDeps): (message: RedactionQueueMessage, signal: AbortSignal) => Promise<HandlerResult> {
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? nullSmsMetrics;
  const now = deps.now ?? (() => new Date());
  const { config } = deps;
  const base = config.retryBaseSeconds ?? 5;
  const actor = 'app:sms-redaction';

  // The `sms.redacted` line: what the job found and did, the mode and what triggered it.
  async function auditRedacted(job: RedactionJob, sidHash: string, found: Record<string, unknown>): Promise<void> {
    await deps.audit.record({ action: 'sms.redacted', actor, resourceType: 'sms', resourceId: sidHash, outcome: 'success', details: { ...found, mode: config.redactionMode, trigger: job.trigger } });
  }

  // After the line: a mark that fails costs a copy line at the message's next job, never a missing one.
  async function markAudited(sidHash: string): Promise<void> {
    await deps.audited.applied(sidHash).catch((err: unknown) => log.warn({ sidHash, code: (err as { name?: string }).name }, 'could not mark the sms redaction audited'));
  }

  async function failed(job: RedactionJob, sidHash: string, reason: string): Promise<HandlerResult> {
    metrics.inc('sms_redaction_dead_lettered_total', { reason });
    log.error({ sidHash, reason, trigger: job.trigger }, 'sms redaction gave up: dead-lettered');
    await deps.audit.record({ action: 'sms.redaction-failed', actor, resourceType: 'sms', resourceId: sidHash, outcome: 'failure', details: { reason, trigger: job.trigger } });
    return { status: 'dead-letter', reason };
  }

  const invalid = (err: unknown): HandlerResult => {
    log.warn({ code: SMS_ERRORS.CR_SMS_JOB_INVALID.code, err: { message: (err as Error).message } }, 'invalid sms redaction job quarantined');
    return { status: 'quarantine', reason: SMS_ERRORS.CR_SMS_JOB_INVALID.code };
  };

  // A send's job from before its create call: finds the send's message if the send stopped before its fallback job.
  async function pending(job: PendingSendJob, signal: AbortSignal): Promise<HandlerResult> {
    try {
      return await handlePendingJob({ config, api: deps.api, enqueue: deps.enqueue, settled: deps.settled, claims: deps.claims, audit: deps.audit, now, logger: log, retry: { ...deps.retry, signal, logger: log } }, job);
    } catch (err) {
      if (signal.aborted) return { status: 'release' };
      if ((err as { code?: unknown }).code === SMS_ERRORS.CR_SMS_JOB_INVALID.code) return invalid(err);
      const c = classifySignalWireError(err);
      const reason = failureReason(err);
      const ageSeconds = (now().getTime() - Date.parse(job.after)) / 1000;
      if (ageSeconds > config.redactionWindowSeconds) {
        metrics.inc('sms_redaction_dead_lettered_total', { reason });
        log.error({ send: job.send, reason, trigger: job.trigger }, 'sms pending send check gave up: dead-lettered');
        await deps.audit.record({ action: 'sms.redaction-failed', actor, resourceType: 'sms-send', resourceId: job.send, outcome: 'failure', details: { reason, trigger: job.trigger } });
        return { status: 'dead-letter', reason };
      }
      metrics.inc('sms_redaction_retries_total', { reason });
      log.warn({ send: job.send, reason, apiCode: c.apiCode }, 'sms pending send check failed, will retry');
      return { status: 'retry', reason, afterSeconds: clamp(c.retryAfterSeconds ?? Math.max(base, ageSeconds / 4), 1, MAX_DELAY_SECONDS) };
    }
  }

  return async function handleRedactionJob(message, signal) {
    let parsed: ReturnType<typeof parseSmsJob>;
    try {
      parsed = parseSmsJob(message.body ?? message.Body ?? '');
    } catch (err) {
      return invalid(err);
    }
    if (parsed.trigger === 'pending') return pending(parsed, signal);
    const job: RedactionJob = parsed;
    const sidHash = hashId(config.hmacKey, job.sid);
    const ageSeconds = (now().getTime() - Date.parse(job.firstSeenAt)) / 1000;
    const expired = ageSeconds > config.redactionWindowSeconds;
    const redelay = (afterSeconds: number, reason: string): HandlerResult => {
      metrics.inc('sms_redaction_retries_total', { reason });
      log.info({ sidHash, reason, afterSeconds }, 'sms redaction re-delayed');
      return { status: 'retry', reason, afterSeconds: clamp(afterSeconds, 1, MAX_DELAY_SECONDS) };
    };
    try {
      const outcome = await redactMessage(
        { api: deps.api, mode: config.redactionMode, sentGraceSeconds: config.sentGraceSeconds, now, retry: { ...deps.retry, signal, logger: log } },
        job.sid,
      );
      switch (outcome.kind) {
        case 'in-progress':
          if (expired) return await failed(job, sidHash, 'in-progress-past-window');
          return redelay(Math.max(base, ageSeconds / 2), 'in-progress');
        case 'grace':
          return redelay(outcome.remainingSeconds, 'sent-grace');
        case 'already-redacted': {
          log.debug({ sidHash }, 'sms already redacted');
          // Redacted with its line (the usual case: the status callback's job, then the scheduled one), or
          // redacted by a job killed before its line, or by someone else. A mark that cannot be read counts
          // as missing: a line too many is harmless, a redaction without one is not.
          if (await deps.audited.isApplied(sidHash).catch(() => false)) return { status: 'done' };
          await auditRedacted(job, sidHash, { messageFound: true, alreadyRedacted: true, copy: true });
          await markAudited(sidHash);
          return { status: 'done' };
        }
        case 'not-found':
          // Deleted by an earlier job of this message (REDACTION_MODE=delete) whose line is written: nothing to say again.
          if (await deps.audited.isApplied(sidHash).catch(() => false)) {
            log.debug({ sidHash, trigger: job.trigger }, 'sms message gone after its redaction');
            return { status: 'done' };
          }
          log.info({ sidHash, mediaDeleted: outcome.mediaDeleted, trigger: job.trigger }, 'sms message not found: nothing to redact');
          if (job.trigger === 'status') {
            // A signed callback named a message SignalWire does not know: say so, not "redacted".
            await deps.audit.record({
              action: 'sms.callback_unknown', actor, resourceType: 'sms', resourceId: sidHash, outcome: 'failure',
              details: { trigger: job.trigger, ...(job.status ? { status: job.status } : {}), mediaDeleted: outcome.mediaDeleted },
            });
            return { status: 'done' };
          }
          await auditRedacted(job, sidHash, { messageFound: false, mediaDeleted: outcome.mediaDeleted });
          return { status: 'done' };
        case 'redacted':
          metrics.inc('sms_redacted_total', { mode: config.redactionMode });
          log.info({ sidHash, mediaDeleted: outcome.mediaDeleted, mode: config.redactionMode, trigger: job.trigger }, 'sms redacted');
          await auditRedacted(job, sidHash, { messageFound: true, mediaDeleted: outcome.mediaDeleted, bodyBlanked: outcome.bodyBlanked, messageDeleted: outcome.messageDeleted });
          await markAudited(sidHash);
          return { status: 'done' };
      }
    } catch (err) {
      if (signal.aborted) return { status: 'release' };
      const c = classifySignalWireError(err);
      const reason = failureReason(err);
      if (expired) return await failed(job, sidHash, reason);
      log.warn({ sidHash, reason, apiCode: c.apiCode }, 'sms redaction failed, will retry');
      return redelay(c.retryAfterSeconds ?? Math.max(base, ageSeconds / 4), reason);
    }
  };
}
