import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Logger } from 'pino';
import { silentLogger } from '../log/logger.ts';
import { errorCode } from '../transport/errors.ts';
import { ALERT_CONDITIONS } from './catalogue.ts';
import type { AlertNotification } from './floodControl.ts';

/** Where notifications go: SNS in production, anything with the same shape in tests. */
export interface AlertNotifier {
  /** Queues one notification; it is sent in order, retried until it goes or the notifier closes. */
  notify(n: AlertNotification): void;
  /** Notifications not sent yet. */
  readonly pending: number;
  /** Tries to send what is pending, for at most `deadlineMs`; resolves with what is left. */
  close(deadlineMs: number): Promise<number>;
}

/** Options for {@link createSnsNotifier}. */
export interface SnsNotifierOptions {
  /** The SNS client. */
  sns: SNSClient;
  /** Topic ARN. */
  topicArn: string;
  /** `interface` or `app`. */
  service: string;
  /** Called once each notification has been published (the service audits it). */
  onSent?: (n: AlertNotification) => Promise<void> | void;
  /** Most notifications kept while SNS is unreachable; older reminders go first. Default 1000. */
  maxPending?: number;
  /** Wait between attempts while SNS fails, ms; default 2000. */
  retryMs?: number;
  /** Logger (ids and codes only). */
  logger?: Logger;
}

/** The message an SNS subscriber receives: JSON with ids, counts and codes, never PHI. */
export function notificationMessage(service: string, n: AlertNotification): string {
  const c = ALERT_CONDITIONS[n.condition];
  return JSON.stringify({
    source: 'care-relay',
    service,
    alert: n.condition,
    state: n.state,
    severity: n.severity,
    subject: n.subject,
    summary: c.summary,
    since: n.since,
    at: n.at,
    facts: n.facts,
    runbook: c.runbook,
  });
}

/** An SNS client for the given endpoint (LocalStack, the emulator) or AWS; credentials from the default chain unless given. */
export function createSnsClient(options: {
  region: string;
  endpoint?: string | undefined;
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}): SNSClient {
  return new SNSClient({
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 3000 },
  });
}

/**
 * Publishes notifications to one SNS topic, one at a time and in order. While SNS is
 * unreachable they wait and are retried (a started alert is not lost in an outage);
 * the queue is bounded (`maxPending`), dropping reminders first, with a warning in the log.
 */
export function createSnsNotifier(options: SnsNotifierOptions): AlertNotifier {
  const log = options.logger ?? silentLogger;
  const maxPending = options.maxPending ?? 1000;
  const retryMs = options.retryMs ?? 2000;
  const queue: AlertNotification[] = [];
  let running: Promise<void> | undefined;
  let closed = false;
  let wake: (() => void) | undefined;

  async function publish(n: AlertNotification): Promise<void> {
    await options.sns.send(
      new PublishCommand({
        TopicArn: options.topicArn,
        Subject: `[care-relay ${options.service}] ${n.state.toUpperCase()} ${n.condition}`.slice(0, 100),
        Message: notificationMessage(options.service, n),
        MessageAttributes: {
          alert: { DataType: 'String', StringValue: n.condition },
          state: { DataType: 'String', StringValue: n.state },
          severity: { DataType: 'String', StringValue: n.severity },
        },
      }),
    );
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const n = queue[0]!;
      try {
        await publish(n);
      } catch (err) {
        log.warn({ code: errorCode(err), pending: queue.length }, 'alert notification not sent; will retry');
        if (closed) return;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
        continue;
      }
      queue.shift();
      log.info({ alert: n.condition, state: n.state, subject: n.subject }, 'alert notification sent');
      await options.onSent?.(n);
    }
  }

  function kick(): void {
    running ??= drain().finally(() => {
      running = undefined;
      if (queue.length > 0 && !closed) kick();
    });
  }

  return {
    notify(n) {
      if (closed) return;
      queue.push(n);
      while (queue.length > maxPending) {
        const i = queue.findIndex((q) => q.state === 'reminder');
        queue.splice(i >= 0 ? i : 0, 1);
        log.warn({ maxPending }, 'alert notification queue full; dropped the oldest reminder');
      }
      kick();
    },
    get pending() {
      return queue.length;
    },
    async close(deadlineMs) {
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      await Promise.race([running ?? Promise.resolve(), deadline]);
      closed = true;
      wake?.();
      return queue.length;
    },
  };
}
