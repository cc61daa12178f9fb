import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** The transport's error codes and quarantine/retry reasons (docs/errors.md, "Transport"). */
export const TRANSPORT_ERRORS = defineErrors({
  CR_TRANSPORT_SEND_FAILED: { status: 503, title: 'Service Unavailable', description: 'SQS refused the message or could not be reached (after retries).' },
  CR_TRANSPORT_MESSAGE_TOO_LARGE: { status: 413, title: 'Payload Too Large', description: 'Body plus attributes exceed the SQS message size limit.' },
  CR_TRANSPORT_QUEUE_MISSING: { status: 503, title: 'Service Unavailable', description: 'A configured queue does not exist (or is not visible with these credentials).' },
  CR_TRANSPORT_QUEUE_SETUP_FAILED: { title: 'Queue setup failed', description: 'A queue exists with different attributes, or queue creation failed.' },
  CR_TRANSPORT_INVALID_OPTION: { title: 'Invalid transport option', description: 'A producer or consumer option is out of range; the message names it and what was expected.' },
  CR_TRANSPORT_UNSUPPORTED_VERSION: { title: 'Unsupported wire version', description: 'Quarantine reason: `cr-version` missing or not a supported version.' },
  CR_TRANSPORT_ENVELOPE_ID_INVALID: { title: 'Invalid envelope id attribute', description: 'Quarantine reason: `cr-envelope-id` missing or not a UUID.' },
  CR_TRANSPORT_INVALID_HANDLER_RESULT: { title: 'Invalid handler result', description: 'Retry reason: a handler returned something that is not a HandlerResult.' },
  CR_REASON_INVALID: { title: 'Invalid reason', description: 'A handler reason that is not a code, replaced so free text never reaches an attribute, a metric or the audit trail.' },
} as const);

/** One of the {@link TRANSPORT_ERRORS} codes. */
export type TransportErrorCode = ErrorCode<typeof TRANSPORT_ERRORS>;

/** A transport failure: one of {@link TRANSPORT_ERRORS}, with the SQS error as `cause`. */
export class TransportError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, fromCatalogue(TRANSPORT_ERRORS[code], options));
    this.name = 'TransportError';
    this.code = code;
  }
}

/** A short, PHI-free code for any error: a RelayError code, an AWS error name or a Node errno code. */
export function errorCode(err: unknown): string {
  if (err === null || typeof err !== 'object') return 'unknown';
  const e = err as { code?: unknown; name?: unknown; Code?: unknown; errors?: unknown[] };
  if (typeof e.code === 'string' && e.code !== '') return e.code;
  if (typeof e.Code === 'string' && e.Code !== '') return e.Code;
  if (Array.isArray(e.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  if (typeof e.name === 'string' && e.name !== '' && e.name !== 'Error') return e.name;
  return 'unknown';
}

/** True for an SQS/SDK error that retrying cannot fix (the request itself is wrong). */
export function isPermanentSqsError(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { $fault?: string; name?: string; $retryable?: unknown };
  if (e.$retryable) return false;
  if (e.name !== undefined && /Throttl|RequestThrottled|OverLimit|KmsThrottled/i.test(e.name)) return false;
  return e.$fault === 'client';
}
