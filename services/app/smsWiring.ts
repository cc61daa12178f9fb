import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { httpErrors } from '../core/http/errors.ts';
import type { Runtime } from '../core/runtime/runtime.ts';
import { createApplyLedger } from '../core/state/applyLedger.ts';
import { createConsumer, type Consumer } from '../core/transport/consumer.ts';
import { createProducer } from '../core/transport/producer.ts';
import type { AppConfig } from './config.ts';
import { createSignalWireClient } from './sms/client.ts';
import { createSmsMetrics } from './sms/metrics.ts';
import { createRedactionHandler } from './sms/redactionWorker.ts';
import { createSmsSender, type SendSmsInput } from './sms/send.ts';
import { jobId } from './sms/redactionJob.ts';
import { createSmsSendClaims } from './sms/sendClaims.ts';
import type { EnqueueRedaction, SmsConfig } from './sms/types.ts';
import { statusWebhook } from './sms/webhook.ts';

/** The SMS part of a running app service. */
export interface SmsParts {
  /** POST /v1/messages (role `messenger`); registered in the authenticated scope. */
  routes: FastifyPluginAsync;
  /** POST /webhooks/signalwire/message-status: public, signature-checked. */
  webhook: FastifyPluginAsync;
  /** The `app-sms-redaction` consumer (redaction worker). */
  consumer: Consumer;
}

/** Maps the app's configuration onto the SMS configuration (SIGNALWIRE_PROJECT_ID set). */
export function smsConfigOf(config: AppConfig): SmsConfig {
  return {
    projectId: config.SIGNALWIRE_PROJECT_ID!,
    apiToken: config.SIGNALWIRE_API_TOKEN!,
    spaceUrl: config.SIGNALWIRE_SPACE_URL!,
    signingKey: config.SIGNALWIRE_SIGNING_KEY!,
    fromNumber: config.SIGNALWIRE_FROM_NUMBER!,
    publicBaseUrl: config.PUBLIC_BASE_URL!,
    ...(config.SIGNALWIRE_WEBHOOK_USER && config.SIGNALWIRE_WEBHOOK_PASSWORD
      ? { webhookBasicAuth: { user: config.SIGNALWIRE_WEBHOOK_USER, password: config.SIGNALWIRE_WEBHOOK_PASSWORD } }
      : {}),
    redactionMode: config.REDACTION_MODE,
    sentGraceSeconds: config.REDACTION_SENT_GRACE_SECONDS,
    fallbackDelaySeconds: config.REDACTION_FALLBACK_DELAY_SECONDS,
    redactionWindowSeconds: config.REDACTION_WINDOW_SECONDS,
    hmacKey: config.HMAC_KEY,
    allowInsecure: config.SIGNALWIRE_ALLOW_INSECURE,
  };
}

const sendSchema = {
  type: 'object',
  required: ['to', 'body'],
  additionalProperties: false,
  properties: {
    to: { type: 'string', maxLength: 16, description: 'E.164 destination number' },
    body: { type: 'string', maxLength: 1600 },
    mediaUrls: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 2048 } },
  },
} as const;

/**
 * Builds the SMS routes, webhook and redaction worker on the service's runtime: the SDK
 * client, the producer that enqueues redaction jobs (the fallback job at send time and
 * the job a terminal callback triggers), and the consumer that runs them.
 */
export function createSms(config: AppConfig, rt: Runtime<'app-sms-redaction'>): SmsParts {
  const sms = smsConfigOf(config);
  const log = rt.logger.child({ part: 'sms' });
  const metrics = createSmsMetrics(rt.metrics.registry);
  const api = createSignalWireClient({ projectId: sms.projectId, apiToken: sms.apiToken, spaceUrl: sms.spaceUrl, allowInsecure: sms.allowInsecure ?? false });
  const queue = rt.queues['app-sms-redaction'];
  const producer = createProducer({ client: rt.sqs, queue, logger: log, metrics: rt.metrics });
  const enqueue: EnqueueRedaction = async (job, delaySeconds) => {
    // A job names a message sid, or a pending send by its own id with the number sealed; the id keys the send result and nothing else.
    await producer.send({ id: jobId(job), body: JSON.stringify(job), delaySeconds });
  };
  // Idempotency-Key claims (`smsidem#<token name>#<key>`), remembered as long as the relay's keys.
  const claims = createSmsSendClaims({ table: rt.state, ttlSeconds: rt.stateTtlSeconds });
  // Sends whose fallback job is on the queue (`smssend#<send id>`): the job each send enqueued before its create
  // call (pendingSend.ts) comes a minute later and then has nothing to look for. Marks only.
  const settled = createApplyLedger({
    table: rt.state,
    holder: rt.holder,
    leaseMs: config.VISIBILITY_TIMEOUT_SECONDS * 1000,
    ttlSeconds: rt.stateTtlSeconds + 86_400,
    prefix: 'smssend',
  });
  const sendSms = createSmsSender({ config: sms, api, enqueue, audit: rt.audit, claims, settled, logger: log, metrics });
  // Redactions with their sms.redacted line (`smsredact#<sid hash>`), remembered a day past the redaction window
  // (or the queues' retention, if longer): a job of the same message comes within it. Only marks are written, no holds.
  const audited = createApplyLedger({
    table: rt.state,
    holder: rt.holder,
    leaseMs: config.VISIBILITY_TIMEOUT_SECONDS * 1000,
    ttlSeconds: Math.max(sms.redactionWindowSeconds, rt.stateTtlSeconds) + 86_400,
    prefix: 'smsredact',
  });

  const routes: FastifyPluginAsync = async (app: FastifyInstance) => {
    app.post<{ Body: SendSmsInput }>(
      '/v1/messages',
      {
        config: { role: 'messenger' },
        bodyLimit: 64 * 1024,
        schema: {
          summary: 'Send an SMS/MMS through SignalWire; its body and media are redacted once delivered. With an Idempotency-Key a retry answers the same sid and sends nothing',
          headers: { type: 'object', properties: { 'idempotency-key': { type: 'string', maxLength: 200 } } },
          body: sendSchema,
          response: { 202: { type: 'object', required: ['sid'], properties: { sid: { type: 'string' }, status: { type: 'string' } } } },
        },
        onRequest: async () => {
          if (rt.emergency.active) throw httpErrors.emergency();
        },
      },
      async (request, reply) => {
        const key = request.headers['idempotency-key'];
        const result = await sendSms(request.body, { actor: request.principal?.name ?? 'unknown', sourceIp: request.ip, ...(typeof key === 'string' ? { idempotencyKey: key } : {}) });
        return reply.code(202).send({ sid: result.sid, status: result.status });
      },
    );
  };

  const webhook: FastifyPluginAsync = async (app: FastifyInstance) => {
    await statusWebhook(app, { config: sms, enqueue, audit: rt.audit, failures: rt.authFailures, logger: log, metrics });
  };

  const consumer = createConsumer({
    client: rt.sqs,
    queue,
    service: 'app',
    logger: log,
    metrics: rt.metrics,
    audit: rt.audit,
    maxInFlight: 8,
    // A job re-delayed (in progress, grace, SignalWire down) goes back as a new message: its window
    // (REDACTION_WINDOW_SECONDS) bounds its tries, not the queue's maxReceiveCount.
    retryAsNewMessage: true,
    visibilityTimeoutSeconds: config.VISIBILITY_TIMEOUT_SECONDS,
    heartbeatIntervalSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    handler: createRedactionHandler({ config: sms, api, audit: rt.audit, audited, enqueue, settled, claims, logger: log, metrics }),
  });

  return { routes, webhook, consumer };
}
