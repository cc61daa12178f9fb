/** How urgent an alert is: `critical` pages the on-call engineer, `warning` goes to the team's channel. */
export type AlertSeverity = 'critical' | 'warning';

/** One alert condition: the same name, severity and runbook in the Prometheus rules and the built-in notifier. */
export interface AlertCondition {
  /** Stable name (the Prometheus `alert:` name). */
  readonly name: string;
  /** Default severity (a subject may raise it, e.g. the SMS redaction DLQ is critical). */
  readonly severity: AlertSeverity;
  /** One line for the notification; never contains PHI. */
  readonly summary: string;
  /** The runbook section for this condition (docs/deploy.md, "Alerts and runbook"). */
  readonly runbook: string;
}

const RUNBOOK = 'docs/deploy.md#';

function condition(name: string, severity: AlertSeverity, summary: string): AlertCondition {
  return Object.freeze({ name, severity, summary, runbook: RUNBOOK + name.toLowerCase() });
}

/** Every alert condition care-relay knows, by name. */
export const ALERT_CONDITIONS = {
  CareRelayDeadLetterQueueNotEmpty: condition('CareRelayDeadLetterQueueNotEmpty', 'warning', 'A dead-letter queue holds messages that were not delivered'),
  CareRelayQuarantineNotEmpty: condition('CareRelayQuarantineNotEmpty', 'warning', 'A quarantine queue holds messages that failed a security or format check'),
  CareRelayQueueBacklogOld: condition('CareRelayQueueBacklogOld', 'critical', 'The oldest waiting message in a queue is older than the threshold'),
  CareRelayEmrDeliveryFailing: condition('CareRelayEmrDeliveryFailing', 'critical', 'EMR delivery has been failing for longer than the threshold'),
  CareRelaySmsRedactionBacklog: condition('CareRelaySmsRedactionBacklog', 'warning', 'SMS redaction jobs are waiting beyond the threshold'),
  CareRelaySmsUnredactedPastWindow: condition('CareRelaySmsUnredactedPastWindow', 'critical', 'An SMS could not be redacted within its window'),
  CareRelayInboxNearCapacity: condition('CareRelayInboxNearCapacity', 'warning', 'The app inbox is nearly full; new records wait in SQS'),
  CareRelayEmergencyModeOn: condition('CareRelayEmergencyModeOn', 'critical', 'Emergency mode is on: intake refused, consumers paused, inbox closed'),
  CareRelayAuditTrailFailing: condition('CareRelayAuditTrailFailing', 'critical', 'Writing the audit trail failed'),
  CareRelayKeyExpiringSoon: condition('CareRelayKeyExpiringSoon', 'warning', 'An own or pinned peer key expires soon'),
  CareRelayServiceNotReady: condition('CareRelayServiceNotReady', 'critical', 'The service has not been ready for longer than the threshold'),
} as const satisfies Record<string, AlertCondition>;

/** The name of one condition. */
export type AlertName = keyof typeof ALERT_CONDITIONS;
