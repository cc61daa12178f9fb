import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** The queue operations' error codes (docs/errors.md, "Queue operations"). */
export const OPS_ERRORS = defineErrors({
  CR_OPS_INVALID_OPTION: { status: 400, title: 'Invalid queue operation option', description: 'A queue operation was given an option out of range (limit, ids, reason, queue role); the message names it and what was expected.' },
  CR_OPS_MESSAGE_NOT_FOUND: { status: 404, title: 'Message not found', description: 'No message with this envelope id or SQS message id is waiting in the DLQ or quarantine queue.' },
  CR_OPS_SQS_FAILED: { status: 503, title: 'Service Unavailable', description: 'SQS could not be read while inspecting or acting on a DLQ or quarantine queue (the SQS error code is given).' },
} as const);

/** One of the {@link OPS_ERRORS} codes. */
export type OpsErrorCode = ErrorCode<typeof OPS_ERRORS>;

/** A queue operation that could not run: one of {@link OPS_ERRORS}. */
export class OpsError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: OpsErrorCode;

  constructor(code: OpsErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, fromCatalogue(OPS_ERRORS[code], options));
    this.name = 'OpsError';
    this.code = code;
  }
}
