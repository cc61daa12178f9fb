import { createOutbound, type Outbound } from '../relay/outbound.ts';
import { createProducer } from '../transport/producer.ts';
import type { LogicalQueue } from '../transport/queues.ts';
import type { Runtime } from './runtime.ts';

/**
 * The outbound path of a service: seals for `to` with the runtime's crypto and sends on
 * `queue` (a producer that checks every result), auditing each relayed message.
 */
export function createOutboundPath<Q extends LogicalQueue>(rt: Runtime<Q>, options: { queue: Q; to: string }): Outbound {
  const producer = createProducer({
    client: rt.sqs,
    queue: rt.queues[options.queue],
    logger: rt.logger,
    metrics: rt.metrics,
  });
  return createOutbound({ crypto: rt.crypto, producer, from: rt.service, to: options.to, queue: options.queue, audit: rt.audit, logger: rt.logger });
}
