import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prefix of every care-relay metric name. */
export const METRIC_PREFIX = 'care_relay_';

/** The metrics the SQS transport (producer and consumer) updates; labels never carry PHI. */
export interface TransportMetrics {
  /** Messages received from a queue. */
  received: Counter<'queue'>;
  /** Messages whose handler finished with `done` and that were deleted. */
  done: Counter<'queue'>;
  /** Messages put back for a later attempt (handler `retry` or a thrown error). */
  retried: Counter<'queue'>;
  /** Messages released at once (visibility 0), by the handler or at shutdown. */
  released: Counter<'queue'>;
  /** Messages copied to the quarantine queue; `reason` is a code, never content. */
  quarantined: Counter<'queue' | 'reason'>;
  /** Messages copied to the dead-letter queue by the consumer; `reason` is a code. */
  deadLettered: Counter<'queue' | 'reason'>;
  /** Messages recognised as duplicates by envelope id, deleted without a second effect. */
  duplicates: Counter<'queue'>;
  /** Messages currently held (received, not yet settled). */
  inFlight: Gauge<'queue'>;
  /** Handler duration in seconds, by outcome (`done`, `retry`, `quarantine`, `dead-letter`, `release`, `error`). */
  handlerDuration: Histogram<'queue' | 'outcome'>;
  /** Heartbeat (visibility extension) entries that failed. */
  heartbeatFailures: Counter<'queue'>;
  /** Deletes that still failed after their retries (the message will come back). */
  deleteFailures: Counter<'queue'>;
  /** Visibility changes (retry backoff, release) that failed. */
  visibilityFailures: Counter<'queue'>;
  /** ReceiveMessage calls that failed (endpoint down, throttled, missing queue). */
  receiveErrors: Counter<'queue'>;
  /** Messages a producer gave up sending (after retries, or refused by SQS). */
  sendFailures: Counter<'queue'>;
  /** Messages a producer sent. */
  sent: Counter<'queue'>;
  /** SQS SentTimestamp (epoch seconds) of the last message received: the oldest-message estimate of the alerts. */
  lastReceivedSent: Gauge<'queue'>;
}

/** A service's metrics: the registry `/metrics` serves, plus the typed transport metrics. */
export interface Metrics {
  /** Service name, bound as the `service` label on every metric. */
  service: string;
  /** The prom-client registry; other parts register their metrics here (`registers: [metrics.registry]`). */
  registry: Registry;
  /** Metrics updated by core/transport. */
  transport: TransportMetrics;
}

/** Options for {@link createMetrics}. */
export interface CreateMetricsOptions {
  /** Also collect Node process metrics (CPU, memory, event loop); default true. */
  defaultMetrics?: boolean;
}

/** Creates a fresh registry for one service (`service` label on every metric) with the transport metrics registered. */
export function createMetrics(service: string, options: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers });
  const q = ['queue'] as const;
  const transport: TransportMetrics = {
    received: counter('messages_received_total', 'Messages received from SQS', q),
    done: counter('messages_done_total', 'Messages processed and deleted', q),
    retried: counter('messages_retried_total', 'Messages returned to the queue for a later attempt', q),
    released: counter('messages_released_total', 'Messages released at once (visibility 0)', q),
    quarantined: counter('messages_quarantined_total', 'Messages moved to the quarantine queue, by reason code', ['queue', 'reason'] as const),
    deadLettered: counter('messages_dead_lettered_total', 'Messages moved to the dead-letter queue by the consumer, by reason code', ['queue', 'reason'] as const),
    duplicates: counter('messages_duplicate_total', 'Duplicate envelope ids acknowledged without a second effect', q),
    inFlight: new Gauge({ name: METRIC_PREFIX + 'messages_in_flight', help: 'Messages received and not yet settled', labelNames: q, registers }),
    handlerDuration: new Histogram({
      name: METRIC_PREFIX + 'handler_duration_seconds',
      help: 'Message handler duration by outcome',
      labelNames: ['queue', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    heartbeatFailures: counter('heartbeat_failures_total', 'Visibility extensions that failed', q),
    deleteFailures: counter('delete_failures_total', 'Message deletes that failed after retries', q),
    visibilityFailures: counter('visibility_change_failures_total', 'Visibility changes (retry, release) that failed', q),
    receiveErrors: counter('receive_errors_total', 'Receive steps that failed: a ReceiveMessage call, or anything else in the step', q),
    sendFailures: counter('send_failures_total', 'Messages a producer could not send', q),
    sent: counter('messages_sent_total', 'Messages sent to SQS', q),
    lastReceivedSent: new Gauge({
      name: METRIC_PREFIX + 'queue_last_received_sent_timestamp_seconds',
      help: 'SQS SentTimestamp of the last message received from a queue',
      labelNames: q,
      registers,
    }),
  };
  return { service, registry, transport };
}
