import { ALERT_CONDITIONS, type AlertName, type AlertSeverity } from './catalogue.ts';
import type { AlertSnapshot } from './snapshot.ts';
import type { AlertThresholds } from './thresholds.ts';

/** One condition holding for one subject (a queue, a key, the service). */
export interface AlertFinding {
  /** The condition. */
  condition: AlertName;
  /** What it is about: a logical queue, a key fingerprint, or `service`. */
  subject: string;
  /** Severity for this subject. */
  severity: AlertSeverity;
  /** Counts, ages and codes for the notification; never PHI. */
  facts: Record<string, string | number>;
}

/** The conditions that hold now, and which conditions could be judged at all. */
export interface Evaluation {
  /** Findings that hold. */
  active: AlertFinding[];
  /** Conditions judged on this snapshot; the others keep their previous state. */
  evaluated: Set<AlertName>;
}

/** The redaction queue: its backlog and its DLQ have conditions of their own. */
const REDACTION_QUEUE = 'app-sms-redaction';
const DAY_MS = 86_400_000;

function finding(condition: AlertName, subject: string, facts: AlertFinding['facts'], severity?: AlertSeverity): AlertFinding {
  return { condition, subject, severity: severity ?? ALERT_CONDITIONS[condition].severity, facts };
}

/** Judges every condition on one snapshot: a pure function, the same rules as deploy/prometheus. */
export function evaluate(s: AlertSnapshot, t: AlertThresholds): Evaluation {
  const active: AlertFinding[] = [];
  const evaluated = new Set<AlertName>(['CareRelayEmergencyModeOn', 'CareRelayAuditTrailFailing', 'CareRelayKeyExpiringSoon', 'CareRelayServiceNotReady']);

  if (s.queues) {
    for (const name of ['CareRelayDeadLetterQueueNotEmpty', 'CareRelayQuarantineNotEmpty', 'CareRelaySmsRedactionBacklog', 'CareRelaySmsUnredactedPastWindow'] as const) {
      evaluated.add(name);
    }
    for (const q of s.queues) {
      const held = q.visible + q.inFlight;
      if (q.role === 'dlq' && held > 0) {
        if (q.queue === REDACTION_QUEUE) active.push(finding('CareRelaySmsUnredactedPastWindow', q.queue, { messages: held }));
        else active.push(finding('CareRelayDeadLetterQueueNotEmpty', q.queue, { messages: held }));
      }
      if (q.role === 'quarantine' && held > 0) active.push(finding('CareRelayQuarantineNotEmpty', q.queue, { messages: held }));
      if (q.role === 'main' && q.queue === REDACTION_QUEUE && held >= t.redactionBacklog) {
        active.push(finding('CareRelaySmsRedactionBacklog', q.queue, { messages: held, threshold: t.redactionBacklog }));
      }
    }
  }
  if (s.oldestAgeSeconds) {
    evaluated.add('CareRelayQueueBacklogOld');
    for (const [queue, age] of Object.entries(s.oldestAgeSeconds)) {
      if (age >= t.queueAgeSeconds) active.push(finding('CareRelayQueueBacklogOld', queue, { oldestAgeSeconds: Math.round(age), threshold: t.queueAgeSeconds }));
    }
  }
  if (s.emr) {
    evaluated.add('CareRelayEmrDeliveryFailing');
    if (s.emr.failing && s.emr.seconds >= t.emrFailingSeconds) {
      active.push(finding('CareRelayEmrDeliveryFailing', 'emr', { failingSeconds: Math.round(s.emr.seconds), threshold: t.emrFailingSeconds }));
    }
  }
  if (s.inbox) {
    evaluated.add('CareRelayInboxNearCapacity');
    if (s.inbox.capacity > 0 && s.inbox.size / s.inbox.capacity >= t.inboxFillRatio) {
      active.push(finding('CareRelayInboxNearCapacity', 'inbox', { records: s.inbox.size, capacity: s.inbox.capacity }));
    }
  }
  if (s.emergency) active.push(finding('CareRelayEmergencyModeOn', 'service', {}));
  if (s.auditFailureAgeSeconds < t.auditFailureWindowSeconds) {
    active.push(finding('CareRelayAuditTrailFailing', 'audit', { lastFailureSecondsAgo: Math.round(s.auditFailureAgeSeconds) }));
  }
  for (const k of s.keys) {
    const days = (k.expiresAt - s.at) / DAY_MS;
    if (days < t.keyExpiryDays) {
      active.push(finding('CareRelayKeyExpiringSoon', k.fingerprint, { role: k.role, daysLeft: Math.max(0, Math.floor(days)) }, days <= 0 ? 'critical' : undefined));
    }
  }
  if (!s.ready && s.notReadySeconds >= t.notReadySeconds) {
    active.push(finding('CareRelayServiceNotReady', 'service', { notReadySeconds: Math.round(s.notReadySeconds) }));
  }
  return { active, evaluated };
}
