import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Codes of the state table and the effects that use it (docs/errors.md, "State"). */
export const STATE_ERRORS = defineErrors({
  CR_STATE_TABLE_MISSING: { title: 'State table missing', description: "At start: the service's DynamoDB state table cannot be described (missing, wrong endpoint, no permission)." },
  CR_STATE_BATCH_DENIED: { title: 'Batch writes not allowed', description: 'Logged once (app): the state table refused BatchWriteItem (AccessDenied); each item is written with its own PutItem from then on. Allow dynamodb:BatchWriteItem on the table.' },
  CR_INBOX_HELD_ELSEWHERE: { title: 'Held by another instance', description: 'Retry reason (app): another app instance holds this envelope id in its inbox under a live lease.' },
  CR_INBOX_MARK_GIVEN_UP: { title: 'Acknowledgement not marked', description: "Logged (warn, app): an acknowledged record's applied mark could not be written at the ack nor on the tries after it before the process stopped or too many marks were waiting; the record is deleted all the same, but a repeated ack of it at another instance is answered 404." },
  CR_DELIVERY_IN_PROGRESS: { title: 'Delivery in progress', description: 'Retry reason (interface): another instance is delivering this chart update to the EMR under a live lease.' },
  CR_DELIVERY_LEASE_LOST: { title: 'Delivery lease lost', description: 'Retry reason (interface): this instance could not renew its lease on a chart update being delivered and another attempt took it over; this attempt was stopped and the other one records the outcome.' },
} as const);

/** One of the {@link STATE_ERRORS} codes. */
export type StateErrorCode = ErrorCode<typeof STATE_ERRORS>;

/** A state table failure: one of {@link STATE_ERRORS}, with the DynamoDB error as `cause`. */
export class StateError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: StateErrorCode;

  constructor(code: StateErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, fromCatalogue(STATE_ERRORS[code], options));
    this.name = 'StateError';
    this.code = code;
  }
}
