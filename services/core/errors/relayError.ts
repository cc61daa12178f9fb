import type { ErrorSpec } from './defineErrors.ts';

/** Base URI of the stable problem `type` for every public error code. */
export const PROBLEM_TYPE_BASE = 'https://care-relay.dev/problems/';

/** Options shared by every catalogued error. */
export interface RelayErrorOptions {
  /** The error that caused this one, kept for the log (never sent to a client). */
  cause?: unknown;
  /** HTTP status when the error is public; absent for internal errors. Area errors take it from their catalogue. */
  status?: number;
  /** Problem `title` (from the area's catalogue); the renderer falls back to the status text. */
  title?: string;
  /** Extra, non-PHI members for the problem document (e.g. `retryAfter`). */
  details?: Record<string, unknown>;
}

/**
 * Every expected failure in care-relay: a stable `code` (like fastify's
 * `FST_ERR_*`), an HTTP status when it is public, and the original `cause`.
 * The message must never contain PHI, tokens or key material.
 */
export class RelayError extends Error {
  /** Stable machine-readable code, e.g. `CR_ENVELOPE_DIGEST_MISMATCH`. */
  readonly code: string;
  /** HTTP status when this error may be shown to a client. */
  readonly status: number | undefined;
  /** Problem `title` of this code, when its catalogue gives one. */
  readonly title: string | undefined;
  /** Extra, non-PHI members for the problem document. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: RelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelayError';
    this.code = code;
    this.status = options.status;
    this.title = options.title;
    this.details = options.details;
  }

  /** The problem `type` URI for this code: stable, documented in docs/errors.md. */
  get type(): string {
    return PROBLEM_TYPE_BASE + this.code.toLowerCase().replace(/^cr_/, '').replaceAll('_', '-');
  }
}

/** The status and title of a catalogue entry as RelayError options, with the occurrence's own cause, details and (for codes sent with several statuses) status. */
export function fromCatalogue(entry: ErrorSpec, options: RelayErrorOptions = {}): RelayErrorOptions {
  const status = options.status ?? entry.status;
  return { ...options, title: entry.title, ...(status === undefined ? {} : { status }) };
}

/** True when `err` is a RelayError with the given code (or any code when omitted). */
export function isRelayError(err: unknown, code?: string): err is RelayError {
  return err instanceof RelayError && (code === undefined || err.code === code);
}
