/** Where each condition starts; every field comes from configuration (ALERT_*). */
export interface AlertThresholds {
  /** Oldest waiting message in a main queue, seconds. */
  queueAgeSeconds: number;
  /** EMR delivery failing without a success, seconds. */
  emrFailingSeconds: number;
  /** SMS redaction jobs waiting or in progress. */
  redactionBacklog: number;
  /** Inbox fill ratio (0-1). */
  inboxFillRatio: number;
  /** A key expiring within this many days. */
  keyExpiryDays: number;
  /** Not ready for this long, seconds. */
  notReadySeconds: number;
  /** An audit write failure within this many seconds keeps the condition on. */
  auditFailureWindowSeconds: number;
}

/** The defaults the configuration documents. */
export const DEFAULT_THRESHOLDS: Readonly<AlertThresholds> = Object.freeze({
  queueAgeSeconds: 900,
  emrFailingSeconds: 300,
  redactionBacklog: 500,
  inboxFillRatio: 0.9,
  keyExpiryDays: 30,
  notReadySeconds: 120,
  auditFailureWindowSeconds: 300,
});
