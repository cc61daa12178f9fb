import { defineErrors, type ErrorCode } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** Every code a key operation can fail with. */
export const KEY_ERRORS = defineErrors({
  CR_KEY_FILE_MISSING: { title: 'Key file missing', description: 'A key file the service or command needs (e.g. `private.asc`) does not exist.' },
  CR_KEY_UNREADABLE: { title: 'Key unreadable', description: 'The file or folder exists but cannot be read (the system error code is given).' },
  CR_KEY_NOT_A_KEY: { title: 'Key not a key', description: 'Not one ASCII-armored OpenPGP key (garbage, several keys or armored blocks), or a key that cannot sign and decrypt now.' },
  CR_KEY_NOT_PRIVATE: { title: 'Key not private', description: 'A public key where a private key is expected (`private.asc`, `private-*.asc`).' },
  CR_KEY_NOT_PUBLIC: { title: 'Key not public', description: 'A private key where a public key is expected (`peers/*.asc`, `keys add-peer`): private keys never travel.' },
  CR_KEY_UNPROTECTED: { title: 'Key unprotected', description: 'A private key without passphrase protection; re-export it with one.' },
  CR_KEY_WRONG_PASSPHRASE: { title: 'Key wrong passphrase', description: 'The passphrase does not decrypt the private key.' },
  CR_KEY_PASSPHRASE_MISSING: { title: 'Key passphrase missing', description: 'No passphrase given (empty), or for `keys generate`/`rotate` neither `CARE_RELAY_KEY_PASSPHRASE` nor `--passphrase-file`.' },
  CR_KEY_EXPIRED: { title: 'Key expired', description: 'The own current key has expired, or every pinned peer key has (rotate; pin the peer\'s new key).' },
  CR_KEY_REVOKED: { title: 'Key revoked', description: 'The own current key is revoked, or every pinned peer key is.' },
  CR_KEY_NO_PEERS: { title: 'Key no peers', description: '`peers/` is missing or holds no `*.asc` key.' },
  CR_KEY_EXISTS: { title: 'Key exists', description: 'A key file already exists; `keys init`/`generate` refuse to replace it without `--force`.' },
  CR_KEY_INSECURE_PERMISSIONS: { title: 'Key file permissions too open', description: 'A private key file is readable or writable by group or others; make it 0600.' },
  CR_KEY_OWN_KEY_AS_PEER: { title: 'Own key as peer', description: 'A key to pin as a peer (or one under `peers/`) is one of this service\'s own keys.' },
  CR_KEY_FINGERPRINT_MISMATCH: { title: 'Key fingerprint mismatch', description: 'The key\'s primary fingerprint is not the one given with `--expect-fingerprint`.' },
} as const);

/** Every code of the catalogue, for membership checks. */
export const KEY_ERROR_CODES = Object.keys(KEY_ERRORS) as KeyErrorCode[];

/** One of the {@link KEY_ERRORS} codes. */
export type KeyErrorCode = ErrorCode<typeof KEY_ERRORS>;

/**
 * A key file or keyring that cannot be used. The message is one line naming the file
 * and the cause; it never contains a passphrase or key material.
 */
export class KeyError extends RelayError {
  /** The stable failure code. */
  override readonly code: KeyErrorCode;

  constructor(code: KeyErrorCode, message: string, cause?: unknown) {
    super(code, message, fromCatalogue(KEY_ERRORS[code], cause === undefined ? {} : { cause }));
    this.name = 'KeyError';
    this.code = code;
  }
}

/** True when `err` is a KeyError (with the given code, when one is given). */
export function isKeyError(err: unknown, code?: KeyErrorCode): err is KeyError {
  return err instanceof KeyError && (code === undefined || err.code === code);
}
