import { RelayError } from '../errors/relayError.ts';

/** Stable codes of the transport errors (documented in docs/errors.md, "Transport"). */
export const TransportErrorCode = {
  /** SQS refused the message or could not be reached (after retries). */
  SEND_FAILED: 'CR_TRANSPORT_SEND_FAILED',
  /** Body plus attributes exceed the SQS message size limit. */
  MESSAGE_TOO_LARGE: 'CR_TRANSPORT_MESSAGE_TOO_LARGE',
  /** A configured queue does not exist (or is not visible with these credentials). */
  QUEUE_MISSING: 'CR_TRANSPORT_QUEUE_MISSING',
  /** A queue exists with different attributes, or queue creation failed. */
  QUEUE_SETUP_FAILED: 'CR_TRANSPORT_QUEUE_SETUP_FAILED',
} as const;

/** HTTP status for each public transport code. */
const STATUS: Record<string, number> = {
  CR_TRANSPORT_SEND_FAILED: 503,
  CR_TRANSPORT_MESSAGE_TOO_LARGE: 413,
  CR_TRANSPORT_QUEUE_MISSING: 503,
};

/** A transport failure: one of {@link TransportErrorCode}, with the SQS error as `cause`. */
export class TransportError extends RelayError {
  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    const status = STATUS[code];
    super(code, message, { ...options, ...(status === undefined ? {} : { status }) });
    this.name = 'TransportError';
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
