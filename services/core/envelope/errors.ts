import { RelayError } from '../errors/relayError.ts';

/** Every code an envelope can be rejected with; all are permanent (the consumer quarantines with the code as reason). */
export const ENVELOPE_ERROR_CODES = [
  'CR_ENVELOPE_NOT_OPENPGP',
  'CR_ENVELOPE_UNDECRYPTABLE',
  'CR_ENVELOPE_SIGNATURE_MISSING',
  'CR_ENVELOPE_SIGNATURE_INVALID',
  'CR_ENVELOPE_SIGNER_NOT_PINNED',
  'CR_ENVELOPE_SIGNING_KEY_EXPIRED',
  'CR_ENVELOPE_SIGNING_KEY_REVOKED',
  'CR_ENVELOPE_WRONG_RECIPIENT',
  'CR_ENVELOPE_WRONG_SENDER',
  'CR_ENVELOPE_WRONG_QUEUE',
  'CR_ENVELOPE_DIGEST_MISMATCH',
  'CR_ENVELOPE_FROM_FUTURE',
  'CR_ENVELOPE_TOO_OLD',
  'CR_ENVELOPE_MALFORMED',
] as const;

/** One of {@link ENVELOPE_ERROR_CODES}. */
export type EnvelopeErrorCode = (typeof ENVELOPE_ERROR_CODES)[number];

/**
 * A message that cannot be accepted (or an envelope that cannot be sealed). The message
 * names the check that failed and never contains the payload, PHI or key material.
 */
export class EnvelopeError extends RelayError {
  /** The stable rejection code; also the quarantine reason. */
  override readonly code: EnvelopeErrorCode;

  constructor(code: EnvelopeErrorCode, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.name = 'EnvelopeError';
    this.code = code;
  }
}

/** True when `err` is an EnvelopeError (with the given code, when one is given). */
export function isEnvelopeError(err: unknown, code?: EnvelopeErrorCode): err is EnvelopeError {
  return err instanceof EnvelopeError && (code === undefined || err.code === code);
}
