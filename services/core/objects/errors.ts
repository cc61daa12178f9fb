import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError, type RelayErrorOptions } from '../errors/relayError.ts';

/** Codes of large documents carried through S3 (docs/errors.md, "Large objects"): request errors and quarantine reasons. */
export const OBJECT_ERRORS = defineErrors({
  CR_OBJECT_STORE_UNAVAILABLE: { status: 503, title: 'Service Unavailable', description: 'The object store (S3) refused or failed an upload or read; retry later.' },
  CR_OBJECT_POINTER_INVALID: { title: 'Invalid object pointer', description: 'Quarantine reason: the signed pointer names another bucket, a key outside the sender\'s prefix or not matching the envelope, or is malformed.' },
  CR_OBJECT_STORE_NOT_CONFIGURED: { title: 'Object store not configured', description: 'Dead-letter reason: an envelope pointing at an object in S3 reached a service without LARGE_OBJECT_BUCKET; set the same bucket on both services and redrive the DLQ.' },
  CR_OBJECT_MISSING: { title: 'Object missing', description: 'Quarantine reason: the object the pointer names is still absent after the retries.' },
  CR_OBJECT_UNDECRYPTABLE: { title: 'Object undecryptable', description: 'Quarantine reason: the object is not an OpenPGP message encrypted to this service (sealed for someone else, or damaged).' },
  CR_OBJECT_SIGNATURE_INVALID: { title: 'Object signature invalid', description: 'Quarantine reason: the object is not signed, or not signed by the pinned key of the envelope\'s sender.' },
  CR_OBJECT_SIZE_MISMATCH: { title: 'Object size mismatch', description: 'Quarantine reason: the object decrypts to another number of bytes than the pointer says (truncated or padded).' },
  CR_OBJECT_DIGEST_MISMATCH: { title: 'Object digest mismatch', description: 'Quarantine reason: the object decrypts to bytes whose SHA-256 differs from the pointer (tampered or swapped).' },
} as const);

/** One of the {@link OBJECT_ERRORS} codes. */
export type ObjectErrorCode = ErrorCode<typeof OBJECT_ERRORS>;

/** A large-object failure (status and title from {@link OBJECT_ERRORS}); the message never quotes the payload. */
export class ObjectError extends RelayError {
  /** The stable code (narrows in a `switch`). */
  override readonly code: ObjectErrorCode;

  constructor(code: ObjectErrorCode, message: string, options: Omit<RelayErrorOptions, 'status' | 'title'> = {}) {
    super(code, message, fromCatalogue(OBJECT_ERRORS[code], options));
    this.name = 'ObjectError';
    this.code = code;
  }
}

/** True when `err` is an {@link ObjectError}. */
export function isObjectError(err: unknown): err is ObjectError {
  return err instanceof ObjectError;
}
