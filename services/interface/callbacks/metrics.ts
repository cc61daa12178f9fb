import { Counter, Histogram, type Registry } from 'prom-client';

/** What became of a status change on its way to a partner's callback URL. */
export type CallbackOutcome = 'enqueued' | 'enqueue_failed' | 'delivered' | 'retried' | 'stopped' | 'dead_lettered' | 'dropped' | 'duplicate' | 'invalid';

/** Counters of the partner status callbacks (no partner or URL label: outcomes only). */
export interface CallbackMetrics {
  /** Counts one outcome. */
  inc(outcome: CallbackOutcome): void;
  /** Records how long one attempt took, seconds. */
  observeAttempt(seconds: number): void;
}

/** prom-client metrics of the callbacks, registered in `registry`: `care_relay_partner_callbacks_total{outcome}` and `care_relay_partner_callback_attempt_seconds`. */
export function createCallbackMetrics(registry: Registry): CallbackMetrics {
  const total = new Counter({ name: 'care_relay_partner_callbacks_total', help: 'Partner status callbacks by outcome', labelNames: ['outcome'], registers: [registry] });
  const attempt = new Histogram({
    name: 'care_relay_partner_callback_attempt_seconds',
    help: 'Duration of one partner status callback attempt',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return { inc: (outcome) => total.inc({ outcome }), observeAttempt: (seconds) => attempt.observe(seconds) };
}
