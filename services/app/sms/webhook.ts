import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { AuditSink } from '../../core/audit/types.ts';
import type { AuthFailureLimiter } from '../../core/http/authFailures.ts';
import { httpErrors } from '../../core/http/errors.ts';
import { hashId, silentLogger } from '../../core/log/logger.ts';
import { SmsError } from './errors.ts';
import { buildRedactionJob } from './redactionJob.ts';
import { publicBaseUrl, STATUS_WEBHOOK_PATH } from './send.ts';
import { formValue, parseForm } from './form.ts';
import { safeEqual, signatureHeader, verifySignature, type CallbackParams } from './signature.ts';
import { FINAL_STATUSES, StatusMap } from './statusMap.ts';
import { nullSmsMetrics, type EnqueueRedaction, type SmsConfig, type SmsMetrics } from './types.ts';

/** Options of {@link statusWebhook}. */
export interface StatusWebhookOptions {
  /** SMS configuration (signing key, public base URL, Basic Auth, grace). */
  config: SmsConfig;
  /** Puts a redaction job on the queue. */
  enqueue: EnqueueRedaction;
  /** Audit trail: rejected callbacks are recorded as `auth.failure`. */
  audit?: AuditSink;
  /** Limits and aggregates rejected callbacks per source (429 past the limit); each is one audit line when absent. */
  failures?: AuthFailureLimiter | undefined;
  /** Logger (never given Body, To or From). */
  logger?: Logger;
  /** Counters. */
  metrics?: SmsMetrics;
  /** Highest status seen per sid (a bounded map); one is created when omitted. */
  statusMap?: StatusMap;
  /** Clock. */
  now?: () => Date;
  /** Largest callback body in bytes (default 64 KiB). */
  bodyLimit?: number;
}

function problem(reply: FastifyReply, err: SmsError, headers: Record<string, string> = {}): FastifyReply {
  return reply
    .code(err.status ?? 500)
    .headers(headers)
    .type('application/problem+json')
    .send({ type: err.type, title: err.message, status: err.status, detail: err.message, code: err.code });
}

/**
 * Fastify plugin (encapsulated, registers its own form parser): `POST /webhooks/signalwire/message-status`.
 * Verifies Basic Auth (when configured) and X-SignalWire-Signature (or its alias X-Twilio-Signature)
 * over PUBLIC_BASE_URL + path + query, with or without the callback URL's credentials, and every form
 * parameter as sent; rejects with 403 problem+json and no effect; on a terminal status (or `sent`,
 * delayed by the grace period) enqueues a redaction job once; never lets a late status undo a later one.
 */
export async function statusWebhook(fastify: FastifyInstance, opts: StatusWebhookOptions): Promise<void> {
  const { config, enqueue } = opts;
  const log = opts.logger ?? silentLogger;
  const metrics = opts.metrics ?? nullSmsMetrics;
  const statuses = opts.statusMap ?? new StatusMap();
  const now = opts.now ?? (() => new Date());
  // The form the callback URL was built on (send.ts), whatever case or default port PUBLIC_BASE_URL is written with.
  const base = publicBaseUrl(config);

  if (fastify.hasContentTypeParser('application/x-www-form-urlencoded')) fastify.removeContentTypeParser('application/x-www-form-urlencoded');
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, parseForm(body as string));
  });

  async function reject(request: FastifyRequest, reply: FastifyReply, err: SmsError, reason: string, headers: Record<string, string> = {}) {
    metrics.inc('sms_webhook_rejected_total', { reason });
    log.warn({ reason, sourceIp: request.ip }, 'signalwire status callback rejected');
    if (opts.failures) await opts.failures.fail(request.ip, { actor: 'signalwire-webhook', resourceType: 'webhook', resourceId: STATUS_WEBHOOK_PATH, reason });
    else await opts.audit?.record({ action: 'auth.failure', actor: 'signalwire-webhook', resourceType: 'webhook', resourceId: STATUS_WEBHOOK_PATH, outcome: 'failure', sourceIp: request.ip, details: { reason } });
    return problem(reply, err, headers);
  }

  fastify.post(STATUS_WEBHOOK_PATH, { bodyLimit: opts.bodyLimit ?? 64 * 1024 }, async (request, reply) => {
    const retryAfter = opts.failures?.refuse(request.ip) ?? 0;
    if (retryAfter > 0) {
      metrics.inc('sms_webhook_rejected_total', { reason: 'rate-limited' });
      throw httpErrors.rateLimited(retryAfter);
    }
    if (config.webhookBasicAuth) {
      // The scheme name is case-insensitive (RFC 9110 section 11.1).
      const credentials = /^basic[ \t]+([A-Za-z0-9+/=]*)[ \t]*$/i.exec(request.headers.authorization ?? '')?.[1];
      if (credentials === undefined) {
        // A challenge, so a client that sends credentials only when asked does send them.
        return reject(request, reply, new SmsError('CR_SMS_WEBHOOK_AUTH', 'Basic authentication required'), 'basic-auth-missing', { 'www-authenticate': 'Basic realm="care-relay"' });
      }
      const expected = `${config.webhookBasicAuth.user}:${config.webhookBasicAuth.password}`;
      if (!safeEqual(Buffer.from(credentials, 'base64').toString('utf8'), expected)) {
        return reject(request, reply, new SmsError('CR_SMS_WEBHOOK_AUTH', 'Basic authentication failed', { status: 403 }), 'basic-auth-wrong');
      }
    }
    const params = (request.body && typeof request.body === 'object' ? request.body : Object.create(null)) as CallbackParams;
    const signature = signatureHeader(request.headers);
    const url = base + request.url;
    if (typeof signature !== 'string' || !verifySignature(config.signingKey, signature, url, params, config.webhookBasicAuth)) {
      const reason = typeof signature === 'string' ? 'signature-invalid' : 'signature-missing';
      return reject(request, reply, new SmsError('CR_SMS_WEBHOOK_SIGNATURE', 'The X-SignalWire-Signature (or X-Twilio-Signature) header is missing or does not match'), reason);
    }
    const sid = formValue(params, 'MessageSid') ?? formValue(params, 'SmsSid');
    const status = formValue(params, 'MessageStatus') ?? formValue(params, 'SmsStatus');
    if (!sid || !status || !/^[A-Za-z0-9-]{8,64}$/.test(sid)) {
      return problem(reply, new SmsError('CR_SMS_WEBHOOK_INVALID', 'expected MessageSid and MessageStatus'));
    }
    const sidHash = hashId(config.hmacKey, sid);
    const advanced = statuses.advance(sid, status);
    const entry = statuses.get(sid);
    if (!advanced && entry?.status !== status) {
      log.debug({ sidHash, status, current: entry?.status }, 'late status callback ignored');
      return reply.code(204).send();
    }
    const wantsJob = FINAL_STATUSES.has(status) || status === 'sent';
    if (wantsJob && entry && !entry.enqueued) {
      const delay = status === 'sent' ? Math.min(900, Math.max(0, config.sentGraceSeconds)) : 0;
      try {
        await enqueue(buildRedactionJob(sid, 'status', now(), undefined, status), delay);
      } catch (err) {
        log.error({ sidHash, status, err: { message: (err as Error).message } }, 'redaction job not enqueued');
        // SignalWire retries a failed callback; the entry stays un-enqueued so the retry enqueues.
        return problem(reply, new SmsError('CR_SMS_ENQUEUE_FAILED', 'The redaction job could not be queued; retry later'));
      }
      statuses.markEnqueued(sid);
      log.info({ sidHash, status, delaySeconds: delay }, 'redaction job enqueued from status callback');
    } else {
      log.debug({ sidHash, status }, 'status callback recorded');
    }
    return reply.code(204).send();
  });
}
