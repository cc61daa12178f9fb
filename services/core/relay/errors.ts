import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError, type RelayErrorOptions } from '../errors/relayError.ts';

/** Codes of the relay paths (intake, chart updates, inbound): request errors and quarantine reasons (docs/errors.md, "Relay"). */
export const RELAY_ERRORS = defineErrors({
  CR_PAYLOAD_EMPTY: { status: 400, title: 'Bad Request', description: 'The submission or chart update has an empty body.' },
  CR_PAYLOAD_MALFORMED: { status: 400, title: 'Bad Request', description: 'The body does not match its content type.' },
  CR_IDEMPOTENCY_KEY_INVALID: { status: 400, title: 'Bad Request', description: 'Idempotency-Key is not 1 to 200 visible ASCII characters.' },
  CR_IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'Conflict', description: 'The Idempotency-Key was already used for a different request.' },
  CR_ENVELOPE_ID_MISMATCH: { title: 'Envelope id mismatch', description: 'Quarantine reason: the cr-envelope-id attribute differs from the id inside the signed envelope.' },
  CR_ENVELOPE_EFFECT_FAILED: { title: 'Envelope effect failed', description: 'Dead-letter reason in a rejection receipt: the effect of an authentic envelope failed on its last allowed receive with an error that has no `CR_*` code (a state table outage), so SQS moves it to the DLQ.' },
  CR_ENVELOPE_UNEXPECTED_KIND: { title: 'Unexpected envelope kind', description: 'Quarantine reason: a valid envelope of a kind this queue does not carry.' },
} as const);

/** One of the {@link RELAY_ERRORS} codes. */
export type RelayPathErrorCode = ErrorCode<typeof RELAY_ERRORS>;

/** A request the relay paths refuse (status and title from {@link RELAY_ERRORS}); the message never quotes the payload. */
export class RelayPathError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: RelayPathErrorCode;

  constructor(code: RelayPathErrorCode, message: string, options: Omit<RelayErrorOptions, 'status' | 'title'> = {}) {
    super(code, message, fromCatalogue(RELAY_ERRORS[code], options));
    this.name = 'RelayPathError';
    this.code = code;
  }
}
