import type { AlertConfig } from '../config/alerts.ts';
import { auditNotification, startAlertMonitor, type AlertMonitor } from '../alerts/monitor.ts';
import type { FailingSince } from '../alerts/failingSince.ts';
import { createSnsClient, createSnsNotifier } from '../alerts/snsNotifier.ts';
import type { ReadinessCheck } from '../http/health.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Runtime } from './runtime.ts';

/** What a service adds to its runtime for the alerts. */
export interface ServiceAlertSources {
  /** Logical queues the service consumes. */
  consumed: readonly LogicalQueue[];
  /** The /readyz checks. */
  readiness: Readonly<Record<string, ReadinessCheck>>;
  /** Interface: EMR delivery failures. */
  emr?: FailingSince;
  /** App: inbox fill. */
  inbox?: () => { size: number; capacity: number };
}

/**
 * Starts a service's alert monitor: health gauges on /metrics always, and built-in SNS
 * notifications (each one audited as `alert.notified`) when ALERT_SNS_TOPIC_ARN is set.
 */
export function startServiceAlerts<Q extends LogicalQueue>(
  rt: Runtime<Q>,
  config: AlertConfig & { AWS_REGION: string; SQS_ENDPOINT?: string | undefined },
  sources: ServiceAlertSources,
): Promise<AlertMonitor> {
  const endpoint = config.SNS_ENDPOINT ?? config.SQS_ENDPOINT;
  const notifier = config.ALERT_SNS_TOPIC_ARN
    ? createSnsNotifier({
        sns: createSnsClient({ region: config.AWS_REGION, endpoint }),
        topicArn: config.ALERT_SNS_TOPIC_ARN,
        service: rt.service,
        logger: rt.logger,
        onSent: (n) => auditNotification(rt.audit, rt.service, n),
      })
    : undefined;
  return startAlertMonitor({
    sources: {
      sqs: rt.sqs,
      // Each queue is watched by the service that consumes it: one alert per condition, not two.
      queues: Object.fromEntries(sources.consumed.map((q) => [q, rt.queues[q as Q]])),
      consumed: sources.consumed,
      lastReceivedSentAt: async (queue) => {
        const v = (await rt.metrics.transport.lastReceivedSent.get()).values.find((x) => x.labels.queue === queue)?.value;
        return v === undefined ? undefined : v * 1000;
      },
      emergency: () => rt.emergency.active,
      keys: rt.keys,
      readiness: sources.readiness,
      auditFailureAt: () => rt.audit.lastFailureAt,
      emr: sources.emr,
      inbox: sources.inbox,
    },
    thresholds: {
      queueAgeSeconds: config.ALERT_QUEUE_AGE_SECONDS,
      emrFailingSeconds: config.ALERT_EMR_FAILING_SECONDS,
      redactionBacklog: config.ALERT_REDACTION_BACKLOG,
      inboxFillRatio: config.ALERT_INBOX_FILL_PERCENT / 100,
      keyExpiryDays: config.ALERT_KEY_EXPIRY_DAYS,
      notReadySeconds: config.ALERT_NOT_READY_SECONDS,
      auditFailureWindowSeconds: 300,
    },
    intervalMs: config.ALERT_INTERVAL_SECONDS * 1000,
    reminderMs: config.ALERT_REMINDER_SECONDS * 1000,
    clearAfterMs: config.ALERT_CLEAR_AFTER_SECONDS * 1000,
    registry: rt.metrics.registry,
    notifier,
    logger: rt.logger,
  });
}
