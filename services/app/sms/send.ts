import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditSink } from '../../core/audit/types.ts';
import type { ApplyLedger } from '../../core/state/applyLedger.ts';
import { hashId, silentLogger } from '../../core/log/logger.ts';
import { classifySignalWireError, withRetry, type RetryOptions, type SignalWireApi } from './client.ts';
import { SmsError } from './errors.ts';
import { buildPendingJob, SEND_SETTLE_SECONDS } from './pendingSend.ts';
import { buildRedactionJob } from './redactionJob.ts';
import type { SmsSendClaims } from './sendClaims.ts';
import { nullSmsMetrics, type EnqueueRedaction, type SmsConfig, type SmsMetrics } from './types.ts';

/** Path of the status webhook, appended to PUBLIC_BASE_URL. */
export const STATUS_WEBHOOK_PATH = '/webhooks/signalwire/message-status';

/** What to send. */
export interface SendSmsInput {
  /** Destination number, E.164. */
  to: string;
  /** Text, up to 1600 characters (may be empty when media is given). */
  body: string;
  /** Media URLs (https; http only when `allowInsecure`), at most 10. */
  mediaUrls?: string[];
}

/** A sent message. */
export interface SendSmsResult {
  /** SignalWire message sid. */
  sid: string;
  /** Status SignalWire reported at creation (usually `queued`). */
  status: string;
  /** An earlier request with the same Idempotency-Key sent it: nothing was sent now. */
  replayed: boolean;
}

/** Dependencies of {@link createSmsSender}. */
export interface SmsSenderDeps {
  /** SMS configuration. */
  config: SmsConfig;
  /** SDK client. */
  api: SignalWireApi;
  /** Puts a redaction job on the queue. */
  enqueue: EnqueueRedaction;
  /** Audit trail. */
  audit: AuditSink;
  /** Idempotency-Key claims (`sendClaims.ts`): a send under a key is made once across the fleet. */
  claims: SmsSendClaims;
  /**
   * Sends whose fallback job is on the queue and `sms.sent` line written, or that SignalWire refused
   * (`smssend#<send id>`): the job each send enqueues before its create call (pendingSend.ts) then has
   * nothing to look for.
   */
  settled: Pick<ApplyLedger, 'applied'>;
  /** Logger (never given bodies or numbers). */
  logger?: Logger;
  /** Counters. */
  metrics?: SmsMetrics;
  /** Clock. */
  now?: () => Date;
  /** Retry policy of the create call (only transient failures before the message exists are retried). */
  retry?: RetryOptions;
}

/** Who asked for the send, for the audit trail. */
export interface SendContext {
  /** Token name or service name (never a secret). */
  actor?: string;
  /** Source address of the request. */
  sourceIp?: string;
  /** The request's Idempotency-Key, if any (claimed under `actor`). */
  idempotencyKey?: string;
}

const E164 = /^\+[1-9]\d{6,14}$/;
const MAX_BODY = 1600;
const MAX_MEDIA = 10;
const SQS_MAX_DELAY = 900;

/** Validates a send request; throws SmsError (400) naming the field. */
export function validateSendInput(input: SendSmsInput, allowInsecure = false): void {
  if (typeof input.to !== 'string' || !E164.test(input.to)) throw new SmsError('CR_SMS_INVALID_TO', 'to: expected an E.164 number like +15551230000');
  const media = input.mediaUrls ?? [];
  if (typeof input.body !== 'string') throw new SmsError('CR_SMS_INVALID_BODY', 'body: expected a string');
  if (input.body.length > MAX_BODY) throw new SmsError('CR_SMS_INVALID_BODY', `body: expected at most ${MAX_BODY} characters`);
  if (input.body.length === 0 && media.length === 0) throw new SmsError('CR_SMS_INVALID_BODY', 'body: expected text, or at least one media URL');
  if (!Array.isArray(media) || media.length > MAX_MEDIA) throw new SmsError('CR_SMS_INVALID_MEDIA_URL', `mediaUrls: expected at most ${MAX_MEDIA} URLs`);
  media.forEach((u, i) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new SmsError('CR_SMS_INVALID_MEDIA_URL', `mediaUrls[${i}]: expected an absolute URL`);
    }
    const ok = url.protocol === 'https:' || (allowInsecure && url.protocol === 'http:');
    if (!ok) throw new SmsError('CR_SMS_INVALID_MEDIA_URL', `mediaUrls[${i}]: expected an https URL${allowInsecure ? ' (or http)' : ''}`);
    if (url.username || url.password) throw new SmsError('CR_SMS_INVALID_MEDIA_URL', `mediaUrls[${i}]: expected a URL without credentials`);
  });
}

/**
 * PUBLIC_BASE_URL as a URL parser writes it (scheme and host lower-cased, a default port left out), without
 * a trailing slash: the status callback URL is built on this form, so it is the one SignalWire signs.
 */
export function publicBaseUrl(config: Pick<SmsConfig, 'publicBaseUrl'>): string {
  return new URL(config.publicBaseUrl.replace(/\/+$/, '') + '/').toString().replace(/\/+$/, '');
}

/** The StatusCallback URL given to SignalWire: PUBLIC_BASE_URL + the webhook path, with Basic Auth credentials when configured. */
export function statusCallbackUrl(config: SmsConfig): string {
  const url = new URL(publicBaseUrl(config) + STATUS_WEBHOOK_PATH);
  if (config.webhookBasicAuth) {
    url.username = encodeURIComponent(config.webhookBasicAuth.user);
    url.password = encodeURIComponent(config.webhookBasicAuth.password);
  }
  return url.toString();
}

/**
 * Returns `sendSms(input, ctx?)`: validates, audits `sms.sending`, enqueues the pending send's job (it finds the
 * message if the process stops before the fallback job), sends through SignalWire with the status callback,
 * enqueues the delayed fallback redaction job, audits `sms.sent` with the number hashed, returns the sid.
 */
export function createSmsSender(deps: SmsSenderDeps): (input: SendSmsInput, ctx?: SendContext) => Promise<SendSmsResult> {
  const log = deps.logger ?? silentLogger;
  const metrics = deps.metrics ?? nullSmsMetrics;
  const now = deps.now ?? (() => new Date());
  const { config } = deps;
  const callback = statusCallbackUrl(config);

  // The fallback redaction job: the message is redacted even if its status callback never comes.
  async function enqueueFallback(sid: string, sidHash: string, sentAt: Date): Promise<{ fallbackEnqueued: boolean; delay: number }> {
    const delay = Math.min(SQS_MAX_DELAY, Math.max(0, config.fallbackDelaySeconds));
    try {
      await deps.enqueue(buildRedactionJob(sid, 'fallback', now(), sentAt), delay);
      return { fallbackEnqueued: true, delay };
    } catch (err) {
      // The message is out: failing the request would make the caller send it again. The status
      // callback still enqueues a job, and so does the pending send's job (the send is not marked settled).
      metrics.inc('sms_fallback_enqueue_failed_total');
      log.error({ sidHash, err: { message: (err as Error).message } }, 'fallback redaction job not enqueued');
      return { fallbackEnqueued: false, delay };
    }
  }

  // The `sms.sent` line of a message out; `copy` when an earlier request with its Idempotency-Key sent it.
  async function auditSent(ctx: SendContext, message: { sidHash: string; toHash: string; media: number }, fallback: { fallbackEnqueued: boolean; delay: number }, copy: boolean): Promise<void> {
    await deps.audit.record({
      action: 'sms.sent', actor: ctx.actor ?? 'app', resourceType: 'sms', resourceId: message.sidHash, outcome: 'success',
      ...(ctx.sourceIp ? { sourceIp: ctx.sourceIp } : {}),
      details: { toHash: message.toHash, media: message.media, fallbackEnqueued: fallback.fallbackEnqueued, fallbackDelaySeconds: fallback.delay, ...(copy ? { copy } : {}) },
    });
  }

  return async function sendSms(input, ctx = {}) {
    validateSendInput(input, config.allowInsecure ?? false);
    const toHash = hashId(config.hmacKey, input.to);
    const media = input.mediaUrls?.length ?? 0;
    const actor = ctx.actor ?? 'app';
    // Keyed, like every identifier of a number: the claim never holds what could be looked up.
    const digest = hashId(config.hmacKey, JSON.stringify([input.to, input.body, input.mediaUrls ?? []]));
    const claim = await deps.claims.claim(actor, ctx.idempotencyKey, digest);
    if (claim.kind === 'sent') {
      // Sent by an earlier request with this key, which may have stopped before its fallback job and its
      // line: both again (redaction jobs are idempotent), the line marked copy.
      const sidHash = hashId(config.hmacKey, claim.sid);
      await auditSent(ctx, { sidHash, toHash, media }, await enqueueFallback(claim.sid, sidHash, new Date(claim.sentAt)), true);
      return { sid: claim.sid, status: claim.status, replayed: true };
    }
    // The send failed: the key is free again, or (maybeSent) answers CR_SMS_OUTCOME_UNKNOWN.
    const failedClaim = (maybeSent: boolean): Promise<void> =>
      deps.claims.failed(claim, maybeSent).catch((e: unknown) => log.error({ toHash, code: (e as { name?: string }).name }, 'could not record a failed send under its Idempotency-Key'));
    // Written, and on disk, before the create call: a message that goes out always has a line, even when
    // the process stops before its `sms.sent` (the outcome is then open, as under CR_SMS_OUTCOME_UNKNOWN).
    // A line that cannot be written sends nothing and frees the key.
    try {
      await deps.audit.record({
        action: 'sms.sending', actor, resourceType: 'sms', resourceId: toHash, outcome: 'success',
        ...(ctx.sourceIp ? { sourceIp: ctx.sourceIp } : {}),
        details: { media, keyed: claim.kind === 'claimed' },
      });
    } catch (err) {
      await failedClaim(false);
      throw err;
    }
    const sentAt = now();
    // Before the create call, so that a message out always has a job that redacts it: the fallback job
    // below needs the sid, and a process can stop between the call and that job. A queue that cannot
    // take it sends nothing.
    const send = randomUUID();
    const settled = (): Promise<void> => deps.settled.applied(send).catch((e: unknown) => log.warn({ toHash, code: (e as { name?: string }).name }, 'could not mark the sms send settled: its pending job will look the message up'));
    try {
      const job = { id: send, to: input.to, body: input.body, actor, ...(claim.kind === 'claimed' ? { claim: { pk: claim.pk, lease: claim.lease } } : {}) };
      await deps.enqueue(buildPendingJob(config.hmacKey, job, sentAt, now()), SEND_SETTLE_SECONDS + 5);
    } catch (err) {
      await failedClaim(false);
      metrics.inc('sms_fallback_enqueue_failed_total');
      log.error({ toHash, err: { message: (err as Error).message } }, 'sms not sent: the pending send job could not be enqueued');
      await deps.audit.record({ action: 'sms.sent', actor, resourceType: 'sms', resourceId: toHash, outcome: 'failure', ...(ctx.sourceIp ? { sourceIp: ctx.sourceIp } : {}), details: { reason: 'redaction-queue-unavailable' } });
      throw new SmsError('CR_SMS_REDACTION_QUEUE_UNAVAILABLE', 'The redaction queue did not take the message\'s job; the message was not sent. Retry later.', { cause: err, details: { retryAfter: 5 } });
    }
    let created: { sid: string; status: string };
    try {
      // A create is retried only when SignalWire surely did not accept it (429, 503); after a
      // timeout or another 5xx it may have been sent, and a second send would duplicate PHI.
      created = (await withRetry(
        'message.create',
        () => deps.api.messages.create({ to: input.to, from: config.fromNumber, body: input.body, statusCallback: callback, ...(input.mediaUrls?.length ? { mediaUrl: input.mediaUrls } : {}) }),
        { ...deps.retry, logger: log, retryOn: (c) => c.status === 429 || c.status === 503 },
      )) as unknown as { sid: string; status: string };
    } catch (err) {
      const c = classifySignalWireError(err);
      // SignalWire answered no (a 4xx, 429, 503): not sent, the key is free again. A timeout or another 5xx may have sent it.
      const maybeSent = c.kind === 'transient' && c.status !== 429 && c.status !== 503;
      await failedClaim(maybeSent);
      if (!maybeSent) await settled();
      log.warn({ toHash, status: c.status, apiCode: c.apiCode }, 'sms send failed');
      await deps.audit.record({ action: 'sms.sent', actor, resourceType: 'sms', resourceId: toHash, outcome: 'failure', ...(ctx.sourceIp ? { sourceIp: ctx.sourceIp } : {}), details: { status: c.status ?? 0, apiCode: c.apiCode ?? 0, ...(maybeSent ? { maybeSent } : {}) } });
      if (c.kind === 'transient') {
        const detail = maybeSent ? 'SignalWire failed while taking the message; it may have been sent' : 'SignalWire is unavailable; the message was not sent';
        throw new SmsError('CR_SMS_PROVIDER_UNAVAILABLE', detail, { cause: err, ...(c.retryAfterSeconds !== undefined ? { details: { retryAfter: c.retryAfterSeconds } } : {}) });
      }
      throw new SmsError('CR_SMS_PROVIDER_REJECTED', `SignalWire refused the message${c.apiCode !== undefined ? ` (code ${c.apiCode})` : ''}`, { cause: err, details: { providerCode: c.apiCode ?? null } });
    }
    const sidHash = hashId(config.hmacKey, created.sid);
    metrics.inc('sms_sent_total');
    // A claim that cannot be marked sent answers CR_SMS_OUTCOME_UNKNOWN once its lease ends: never a second message.
    const recorded = await deps.claims.sent(claim, { sid: created.sid, status: created.status, sentAt: sentAt.toISOString() }).then(
      () => true,
      (e: unknown) => (log.error({ sidHash, code: (e as { name?: string }).name }, 'could not record the send under its Idempotency-Key'), false),
    );
    const fallback = await enqueueFallback(created.sid, sidHash, sentAt);
    log.info({ sidHash, toHash, media, fallbackEnqueued: fallback.fallbackEnqueued }, 'sms sent');
    await auditSent(ctx, { sidHash, toHash, media }, fallback, false);
    // Settled once the fallback job is on the queue, the line written and the sid recorded under the key: else the
    // pending job finds the message, enqueues its fallback job, writes the line (marked recovered) and answers the key.
    if (fallback.fallbackEnqueued && recorded) await settled();
    return { sid: created.sid, status: created.status, replayed: false };
  };
}
