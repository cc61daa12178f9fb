import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from '../metrics/registry.ts';
import type { AlertFinding } from './evaluate.ts';
import type { AlertState } from './floodControl.ts';
import type { AlertSnapshot } from './snapshot.ts';

/** The gauges that export an {@link AlertSnapshot} to Prometheus (deploy/prometheus reads these). */
export interface AlertGauges {
  /** Sets every gauge from one snapshot and the built-in conditions that are on. */
  update(s: AlertSnapshot, active: readonly AlertFinding[]): void;
  /** Counts one notification sent. */
  sent(state: AlertState): void;
}

/** Which service-specific gauges exist: the EMR's on the interface, the inbox's on the app. */
export interface AlertGaugeParts {
  /** Interface: `emr_failing_seconds`. */
  emr: boolean;
  /** App: `inbox_records`, `inbox_capacity`. */
  inbox: boolean;
}

/** Registers the health gauges in `registry`; names are stable (the alert rules use them). */
export function createAlertGauges(registry: Registry, parts: AlertGaugeParts): AlertGauges {
  const registers = [registry];
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name: METRIC_PREFIX + name, help, labelNames, registers });
  const queueMessages = gauge('queue_messages', 'Approximate messages in a queue, by role (main, dlq, quarantine) and state', ['queue', 'role', 'state'] as const);
  const queuePollOk = gauge('queue_depth_poll_success', '1 when the last queue depth poll succeeded');
  const oldestAge = gauge('queue_oldest_message_age_seconds', 'Upper bound of the oldest waiting message age in a consumed main queue', ['queue'] as const);
  const emrFailing = parts.emr ? gauge('emr_failing_seconds', 'Seconds since EMR delivery started failing with no success since (0 when healthy)') : undefined;
  const inboxRecords = parts.inbox ? gauge('inbox_records', 'Records held in the app inbox') : undefined;
  const inboxCapacity = parts.inbox ? gauge('inbox_capacity', 'Capacity of the app inbox') : undefined;
  const emergency = gauge('emergency_mode', '1 while emergency mode is on');
  const auditFailureAge = gauge('audit_last_write_failure_age_seconds', 'Seconds since the last failed audit write (+Inf when none)');
  const keyExpiry = gauge('key_expiry_seconds', 'Seconds until an own or pinned peer key expires (+Inf when it never does)', ['role', 'fingerprint'] as const);
  const notReady = gauge('not_ready_seconds', 'Seconds the service has been continuously not ready (0 when ready)');
  const ready = gauge('ready', '1 when the service is ready');
  const alertActive = gauge('alert_active', 'Built-in alert conditions that are on (1), by alert and subject', ['alert', 'subject', 'severity'] as const);
  const notifications = new Counter({ name: METRIC_PREFIX + 'alert_notifications_total', help: 'Alert notifications sent, by state', labelNames: ['state'] as const, registers });

  return {
    update(s, active) {
      queuePollOk.set(s.queues ? 1 : 0);
      if (s.queues) {
        queueMessages.reset();
        for (const q of s.queues) {
          queueMessages.set({ queue: q.queue, role: q.role, state: 'visible' }, q.visible);
          queueMessages.set({ queue: q.queue, role: q.role, state: 'in_flight' }, q.inFlight);
          queueMessages.set({ queue: q.queue, role: q.role, state: 'delayed' }, q.delayed);
        }
      }
      if (s.oldestAgeSeconds) for (const [queue, age] of Object.entries(s.oldestAgeSeconds)) oldestAge.set({ queue }, age);
      if (s.emr) emrFailing?.set(s.emr.seconds);
      if (s.inbox) {
        inboxRecords?.set(s.inbox.size);
        inboxCapacity?.set(s.inbox.capacity);
      }
      emergency.set(s.emergency ? 1 : 0);
      auditFailureAge.set(s.auditFailureAgeSeconds);
      keyExpiry.reset();
      for (const k of s.keys) keyExpiry.set({ role: k.role, fingerprint: k.fingerprint }, (k.expiresAt - s.at) / 1000);
      notReady.set(s.notReadySeconds);
      ready.set(s.ready ? 1 : 0);
      alertActive.reset();
      for (const f of active) alertActive.set({ alert: f.condition, subject: f.subject, severity: f.severity }, 1);
    },
    sent(state) {
      notifications.inc({ state });
    },
  };
}
