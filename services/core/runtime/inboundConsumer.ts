import { createInboundHandler, type EnvelopeEffect } from '../relay/inbound.ts';
import { createConsumer, type Consumer } from '../transport/consumer.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Runtime } from './runtime.ts';

/** The consumer settings a service's configuration carries. */
export interface ConsumerConfig {
  QUEUE_FIFO: boolean;
  VISIBILITY_TIMEOUT_SECONDS: number;
  HEARTBEAT_INTERVAL_SECONDS: number;
}

/** Options for {@link createInboundConsumer}. */
export interface InboundConsumerOptions<Q extends LogicalQueue> {
  /** The queue received from. */
  queue: Q;
  /** Envelope kinds accepted on it; any other is quarantined. */
  kinds: readonly string[];
  /** What a valid envelope does (hold in the inbox, deliver to the EMR). */
  effect: EnvelopeEffect;
  /** Messages held at once (backpressure bound). */
  maxInFlight: number;
}

/**
 * A consumer of sealed envelopes on one of the runtime's queues: opened with the
 * runtime's crypto, checked, then applied by `effect`, which recognises duplicates by the
 * signed envelope id in the state table (never by the clear attribute); failures quarantined,
 * audited and counted.
 */
export function createInboundConsumer<Q extends LogicalQueue>(rt: Runtime<Q>, config: ConsumerConfig, options: InboundConsumerOptions<Q>): Consumer {
  const queue = rt.queues[options.queue];
  return createConsumer({
    client: rt.sqs,
    queueUrl: queue.url,
    dlqUrl: queue.dlqUrl,
    quarantineUrl: queue.quarantineUrl,
    queueName: options.queue,
    service: rt.service,
    logger: rt.logger,
    metrics: rt.metrics,
    audit: rt.audit,
    fifo: config.QUEUE_FIFO,
    maxInFlight: options.maxInFlight,
    visibilityTimeoutSeconds: config.VISIBILITY_TIMEOUT_SECONDS,
    heartbeatIntervalSeconds: config.HEARTBEAT_INTERVAL_SECONDS,
    handler: createInboundHandler({
      crypto: rt.crypto,
      queue: options.queue,
      kinds: options.kinds,
      service: rt.service,
      audit: rt.audit,
      logger: rt.logger,
      effect: options.effect,
    }),
  });
}
