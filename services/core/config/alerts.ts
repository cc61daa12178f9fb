import { z } from 'zod';
import { envVar } from './env.ts';

/** Alerting variables both services read (each through its own config.ts). */
export const alertEnvShape = {
  /** SNS topic for built-in alert notifications; unset = gauges only (Prometheus). */
  ALERT_SNS_TOPIC_ARN: z.string().regex(/^arn:[^:]+:sns:[^:]*:[^:]*:[A-Za-z0-9_-]{1,256}$/, 'expected an SNS topic ARN').optional(),
  /** SNS endpoint; unset means SQS_ENDPOINT when that is set, else AWS. */
  SNS_ENDPOINT: envVar.url().optional(),
  /** Seconds between evaluations of the alert conditions. */
  ALERT_INTERVAL_SECONDS: envVar.int(30, 1, 3600),
  /** Seconds between reminders while a condition holds; 0 = none. */
  ALERT_REMINDER_SECONDS: envVar.int(3600, 0, 604_800),
  /** Seconds a condition must stop holding before it is reported cleared. */
  ALERT_CLEAR_AFTER_SECONDS: envVar.int(120, 0, 86_400),
  /** Oldest waiting message in a consumed queue, seconds. */
  ALERT_QUEUE_AGE_SECONDS: envVar.int(900, 1, 1_209_600),
  /** EMR delivery failing without a success, seconds (interface). */
  ALERT_EMR_FAILING_SECONDS: envVar.int(300, 0, 86_400),
  /** SMS redaction jobs waiting or in progress (app). */
  ALERT_REDACTION_BACKLOG: envVar.int(500, 1, 10_000_000),
  /** Inbox fill, percent (app). */
  ALERT_INBOX_FILL_PERCENT: envVar.int(90, 1, 100),
  /** Own or pinned peer key expiring within this many days. */
  ALERT_KEY_EXPIRY_DAYS: envVar.int(30, 0, 3650),
  /** Not ready for this long, seconds. */
  ALERT_NOT_READY_SECONDS: envVar.int(120, 0, 86_400),
};

/** The alert fields of a validated service configuration. */
export type AlertConfig = z.infer<z.ZodObject<typeof alertEnvShape>>;
