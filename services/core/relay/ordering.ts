/** How many ordered message groups chart updates are spread over on FIFO queues. */
export const ORDERING_BUCKETS = 64;

/** The HTTP header that names the record a chart update belongs to (e.g. a patient or encounter id). */
export const ORDERING_KEY_HEADER = 'ordering-key';

/**
 * The ordering bucket of a chart update (`0`..`63`): updates with the same bucket travel in one
 * FIFO message group and reach the EMR in the order they were sent. It is drawn from the keyed
 * hash of the update's `Ordering-Key` (the record it changes), so every update of a record keeps
 * its order across writers and instances, or of its writer when it names no record (the writer's
 * updates then keep their order, as on one ordered queue). Only the bucket leaves the service:
 * neither the key nor its hash, and 64 buckets link no message to a record.
 */
export function orderingBucket(hash: (value: string) => string, input: { orderingKey?: string | undefined; actor: string }): string {
  const source = input.orderingKey !== undefined && input.orderingKey !== '' ? `record:${input.orderingKey}` : `writer:${input.actor}`;
  return String(Number.parseInt(hash(source).slice(0, 8), 16) % ORDERING_BUCKETS);
}
