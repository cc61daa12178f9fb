import { Counter, type Registry } from 'prom-client';
import type { SmsMetricName, SmsMetrics } from './types.ts';

const HELP: Record<SmsMetricName, [string, string[]]> = {
  sms_sent_total: ['SMS messages accepted by SignalWire', []],
  sms_redacted_total: ['SMS messages redacted (media deleted, body blanked)', ['mode']],
  sms_redaction_retries_total: ['SMS redaction jobs re-delayed', ['reason']],
  sms_redaction_dead_lettered_total: ['SMS redaction jobs sent to the DLQ after the redaction window', ['reason']],
  sms_webhook_rejected_total: ['SignalWire status callbacks rejected (signature or Basic Auth)', ['reason']],
  sms_fallback_enqueue_failed_total: ['Fallback redaction jobs that could not be enqueued at send time', []],
};

/** prom-client counters for the SMS part, registered in `registry`. */
export function createSmsMetrics(registry: Registry): SmsMetrics {
  const counters = new Map<SmsMetricName, Counter>();
  for (const [name, [help, labelNames]] of Object.entries(HELP) as [SmsMetricName, [string, string[]]][]) {
    counters.set(name, new Counter({ name: `care_relay_${name}`, help, labelNames, registers: [registry] }));
  }
  return { inc: (name, labels) => (labels ? counters.get(name)!.inc(labels) : counters.get(name)!.inc()) };
}
