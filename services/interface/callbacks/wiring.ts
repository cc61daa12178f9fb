import { readFileSync } from 'node:fs';
import type { Runtime } from '../../core/runtime/runtime.ts';
import { createConsumer, type Consumer } from '../../core/transport/consumer.ts';
import { createProducer } from '../../core/transport/producer.ts';
import type { InterfaceConfig } from '../config.ts';
import type { SubmissionStatusEvent, SubmissionStatusEvents } from '../status/events.ts';
import { createCallbackHandler } from './handler.ts';
import { buildCallbackJob } from './job.ts';
import { createCallbackLedger } from './ledger.ts';
import { createCallbackMetrics } from './metrics.ts';
import { createCallbackPoster } from './post.ts';
import type { CallbackTargets } from './targets.ts';

/** The logical queue of the partner callback jobs (the interface sends and receives it). */
export const CALLBACK_QUEUE = 'interface-partner-callbacks';

/** The partner status callbacks of a running interface service. */
export interface PartnerCallbacks {
  /** The consumer that delivers queued callbacks. */
  consumer: Consumer;
  /** Stops listening to status changes and waits for the enqueues under way. */
  close(): Promise<void>;
}

/** The callback settings of the interface's configuration. */
export type CallbackConfig = Pick<
  InterfaceConfig,
  | 'PARTNER_CALLBACK_TIMEOUT_MS'
  | 'PARTNER_CALLBACK_MAX_ATTEMPTS'
  | 'PARTNER_CALLBACK_BACKOFF_SECONDS'
  | 'PARTNER_CALLBACK_BACKOFF_MAX_SECONDS'
  | 'PARTNER_CALLBACK_CA_FILE'
  | 'PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS'
  | 'VISIBILITY_TIMEOUT_SECONDS'
  | 'HEARTBEAT_INTERVAL_SECONDS'
>;

/**
 * Subscribes to the submission status changes and delivers each one whose partner has a
 * callback: the change becomes a job on the `interface-partner-callbacks` queue (durable: a
 * restart, a crash or a receiver that is down loses nothing; retries are visibility changes
 * with backoff; the DLQ and the alerts come with the queue), and the consumer POSTs it signed.
 * The listener never throws and never waits: intake is neither delayed nor failed by a callback.
 */
export function createPartnerCallbacks(config: CallbackConfig, rt: Runtime<typeof CALLBACK_QUEUE>, targets: CallbackTargets, events: SubmissionStatusEvents): PartnerCallbacks {
  const log = rt.logger.child({ part: 'callbacks' });
  const metrics = createCallbackMetrics(rt.metrics.registry);
  const queue = rt.queues[CALLBACK_QUEUE];
  const producer = createProducer({ client: rt.sqs, queue, logger: log, metrics: rt.metrics });
  const pending = new Set<Promise<void>>();

  const enqueue = async (event: SubmissionStatusEvent): Promise<void> => {
    const ids = { submissionId: event.submissionId, partner: event.partner, status: event.status };
    try {
      const job = buildCallbackJob(event);
      await producer.send({ id: job.webhookId, body: JSON.stringify(job) });
      metrics.inc('enqueued');
    } catch (err) {
      metrics.inc('enqueue_failed');
      const code = (err as { code?: unknown }).code;
      log.error({ ...ids, code: typeof code === 'string' ? code : 'error', reason: 'CR_CALLBACK_ENQUEUE_FAILED' }, 'partner callback not enqueued');
      await rt.audit
        .record({
          action: 'callback.dropped',
          actor: 'interface',
          resourceType: 'submission',
          resourceId: event.submissionId,
          outcome: 'failure',
          details: { partner: event.partner, status: event.status, reason: 'CR_CALLBACK_ENQUEUE_FAILED' },
        })
        .catch(() => log.error({ ...ids, action: 'callback.dropped' }, 'audit write failed'));
    }
  };

  const unsubscribe = events.subscribe((event) => {
    if (!targets.get(event.partner)) return;
    const p = enqueue(event).finally(() => pending.delete(p));
    pending.add(p);
  });

  const consumer = createConsumer({
    client: rt.sqs,
    queue,
    service: 'interface',
    logger: log,
    metrics: rt.metrics,
    audit: rt.audit,
    maxInFlight: 16,
    visibilityTimeoutSeconds: config.VISIBILITY_TIMEOUT_SECONDS,
    heartbeatIntervalSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    handler: createCallbackHandler({
      targets,
      // An attempt's lease outlasts its timeout.
      ledger: createCallbackLedger({ table: rt.state, holder: rt.holder, leaseMs: config.PARTNER_CALLBACK_TIMEOUT_MS + 5_000, ttlSeconds: rt.stateTtlSeconds }),
      post: createCallbackPoster({
        timeoutMs: config.PARTNER_CALLBACK_TIMEOUT_MS,
        allowPrivate: config.PARTNER_CALLBACK_ALLOW_PRIVATE_NETWORKS,
        ...(config.PARTNER_CALLBACK_CA_FILE ? { ca: readFileSync(config.PARTNER_CALLBACK_CA_FILE) } : {}),
      }),
      audit: rt.audit,
      logger: log,
      metrics,
      maxAttempts: config.PARTNER_CALLBACK_MAX_ATTEMPTS,
      backoff: { baseSeconds: config.PARTNER_CALLBACK_BACKOFF_SECONDS, maxSeconds: config.PARTNER_CALLBACK_BACKOFF_MAX_SECONDS },
    }),
  });

  return {
    consumer,
    async close() {
      unsubscribe();
      await Promise.allSettled([...pending]);
    },
  };
}
