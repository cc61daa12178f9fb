import { RelayError } from '../errors/relayError.ts';

/** Every code a key operation can fail with. */
export const KEY_ERROR_CODES = [
  'CR_KEY_FILE_MISSING',
  'CR_KEY_UNREADABLE',
  'CR_KEY_NOT_A_KEY',
  'CR_KEY_NOT_PRIVATE',
  'CR_KEY_NOT_PUBLIC',
  'CR_KEY_UNPROTECTED',
  'CR_KEY_WRONG_PASSPHRASE',
  'CR_KEY_PASSPHRASE_MISSING',
  'CR_KEY_EXPIRED',
  'CR_KEY_REVOKED',
  'CR_KEY_NO_PEERS',
  'CR_KEY_EXISTS',
  'CR_KEY_INSECURE_PERMISSIONS',
  'CR_KEY_OWN_KEY_AS_PEER',
  'CR_KEY_FINGERPRINT_MISMATCH',
] as const;

/** One of {@link KEY_ERROR_CODES}. */
export type KeyErrorCode = (typeof KEY_ERROR_CODES)[number];

/**
 * A key file or keyring that cannot be used. The message is one line naming the file
 * and the cause; it never contains a passphrase or key material.
 */
export class KeyError extends RelayError {
  /** The stable failure code. */
  override readonly code: KeyErrorCode;

  constructor(code: KeyErrorCode, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.name = 'KeyError';
    this.code = code;
  }
}

/** True when `err` is a KeyError (with the given code, when one is given). */
export function isKeyError(err: unknown, code?: KeyErrorCode): err is KeyError {
  return err instanceof KeyError && (code === undefined || err.code === code);
}
