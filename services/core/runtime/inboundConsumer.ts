import { createInboundHandler, type EnvelopeEffects, type RejectionListener } from '../relay/inbound.ts';
import { createConsumer, type Consumer } from '../transport/consumer.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Runtime } from './runtime.ts';

/** The consumer settings a service's configuration carries. */
export interface ConsumerConfig {
  VISIBILITY_TIMEOUT_SECONDS: number;
  HEARTBEAT_INTERVAL_SECONDS: number;
}

/** Options for {@link createInboundConsumer}. */
export interface InboundConsumerOptions<Q extends LogicalQueue> {
  /** The queue received from. */
  queue: Q;
  /** Envelope kind → what it does (hold in the inbox, deliver to the EMR, witness a checkpoint); any other kind is quarantined. */
  effects: EnvelopeEffects;
  /** Messages held at once (backpressure bound). */
  maxInFlight: number;
  /** Told of authentic envelopes refused (the rejection receipts). */
  onRejected?: RejectionListener;
}

/**
 * A consumer of sealed envelopes on one of the runtime's queues: opened with the
 * runtime's crypto, checked, then applied by the effect of its kind, which recognises duplicates
 * by the signed envelope id in the state table where a second effect would matter (never by the
 * clear attribute); failures quarantined, audited and counted.
 */
export function createInboundConsumer<Q extends LogicalQueue>(rt: Runtime<Q>, config: ConsumerConfig, options: InboundConsumerOptions<Q>): Consumer {
  return createConsumer({
    client: rt.sqs,
    queue: rt.queues[options.queue],
    service: rt.service,
    logger: rt.logger,
    metrics: rt.metrics,
    audit: rt.audit,
    maxInFlight: options.maxInFlight,
    visibilityTimeoutSeconds: config.VISIBILITY_TIMEOUT_SECONDS,
    heartbeatIntervalSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    handler: createInboundHandler({
      crypto: rt.crypto,
      queue: options.queue,
      effects: options.effects,
      service: rt.service,
      audit: rt.audit,
      logger: rt.logger,
      ...(options.onRejected ? { onRejected: options.onRejected } : {}),
    }),
  });
}
