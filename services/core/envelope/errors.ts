import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Every code an envelope can be rejected with; all are permanent (the consumer quarantines with the code as reason). */
export const ENVELOPE_ERRORS = defineErrors({
  CR_ENVELOPE_NOT_OPENPGP: { title: 'Not an OpenPGP message', description: 'The body is not a strictly well-formed ASCII-armored `PGP MESSAGE` (header, blank line, canonical base64, matching CRC-24 line when present) or not parseable OpenPGP.' },
  CR_ENVELOPE_UNDECRYPTABLE: { title: 'Envelope undecryptable', description: 'Not encrypted to any own key (current or older), not public-key encrypted at all (signed-only, password-encrypted), or the ciphertext fails its integrity check.' },
  CR_ENVELOPE_SIGNATURE_MISSING: { title: 'Envelope signature missing', description: 'Encrypted but not signed.' },
  CR_ENVELOPE_SIGNATURE_INVALID: { title: 'Envelope signature invalid', description: 'A signature by a pinned key does not verify (wrong data, bad creation time, signing key not capable or newer than the signature).' },
  CR_ENVELOPE_SIGNER_NOT_PINNED: { title: 'Envelope signer not pinned', description: 'A signature is by a key whose primary fingerprint is not pinned under `peers/` (a same-user-ID key does not count); an unpinned co-signature is refused too.' },
  CR_ENVELOPE_SIGNING_KEY_EXPIRED: { title: 'Envelope signing key expired', description: 'The signing key or subkey of a pinned peer had expired at the signature\'s creation time.' },
  CR_ENVELOPE_SIGNING_KEY_REVOKED: { title: 'Envelope signing key revoked', description: 'The signing key or subkey of a pinned peer is revoked (hard revocations apply to every signature; "superseded"/"retired" from their date on).' },
  CR_ENVELOPE_WRONG_RECIPIENT: { title: 'Envelope wrong recipient', description: 'The envelope `to` is not this service.' },
  CR_ENVELOPE_WRONG_SENDER: { title: 'Envelope wrong sender', description: 'The envelope `from` is not the service of the pinned peer key that signed it.' },
  CR_ENVELOPE_WRONG_QUEUE: { title: 'Envelope wrong queue', description: 'The envelope `queue` is not the queue it was received on.' },
  CR_ENVELOPE_DIGEST_MISMATCH: { title: 'Envelope digest mismatch', description: '`sha256` is not the SHA-256 of the decoded body (also refused by `seal`).' },
  CR_ENVELOPE_FROM_FUTURE: { title: 'Envelope from the future', description: '`sentAt` is later than now plus the allowed clock skew.' },
  CR_ENVELOPE_TOO_OLD: { title: 'Envelope too old', description: '`sentAt` is earlier than now minus the maximum age (the queue\'s retention).' },
  CR_ENVELOPE_MALFORMED: { title: 'Envelope malformed', description: 'The plaintext is not UTF-8, not JSON, or not a wire format v1 envelope (a missing, unknown or invalid field); or the body exceeds 2 MiB before any parsing.' },
} as const);

/** Every code of the catalogue, for membership checks. */
export const ENVELOPE_ERROR_CODES = Object.keys(ENVELOPE_ERRORS) as EnvelopeErrorCode[];

/** One of the {@link ENVELOPE_ERRORS} codes. */
export type EnvelopeErrorCode = ErrorCode<typeof ENVELOPE_ERRORS>;

/** The signed id and kind of a refused envelope whose signature by a pinned peer verified (so the sender can be told). */
export interface AttributedEnvelope {
  /** The envelope id, as signed. */
  readonly id: string;
  /** The envelope kind, as signed. */
  readonly kind: string;
}

/**
 * A message that cannot be accepted (or an envelope that cannot be sealed). The message
 * names the check that failed and never contains the payload, PHI or key material.
 */
export class EnvelopeError extends RelayError {
  /** The stable rejection code; also the quarantine reason. */
  override readonly code: EnvelopeErrorCode;
  /** Set when the envelope was decrypted, its signature verified and its fields read, and a later check refused it. */
  readonly attributed: AttributedEnvelope | undefined;

  constructor(code: EnvelopeErrorCode, message: string, cause?: unknown, attributed?: AttributedEnvelope) {
    super(code, message, fromCatalogue(ENVELOPE_ERRORS[code], cause === undefined ? {} : { cause }));
    this.name = 'EnvelopeError';
    this.code = code;
    this.attributed = attributed;
  }
}

/** True when `err` is an EnvelopeError (with the given code, when one is given). */
export function isEnvelopeError(err: unknown, code?: EnvelopeErrorCode): err is EnvelopeError {
  return err instanceof EnvelopeError && (code === undefined || err.code === code);
}
