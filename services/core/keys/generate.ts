import { generateKey } from 'openpgp';
import { KeyError } from './errors.ts';
import { fingerprintOf } from './keyring.ts';

/**
 * Key algorithm options for every care-relay key: v4 Ed25519 (sign, certify) with a
 * Curve25519 ECDH subkey in the legacy encoding, which GnuPG 2.2 and later read and write
 * (the RFC 9580 `curve25519` type is not understood by GnuPG 2.2).
 */
export const KEY_ALGORITHM = Object.freeze({ type: 'ecc', curve: 'curve25519Legacy' } as const);

/** A lower-case service name, also used in the user ID and as a peer file name. */
export const SERVICE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;

/** Options for {@link generateServiceKey}. */
export interface GenerateServiceKeyOptions {
  /** Service name, e.g. `app`; the user ID becomes `care-relay app <app@care-relay.invalid>`. */
  service: string;
  /** Passphrase protecting the private key (required, non-empty). */
  passphrase: string;
  /** Creation time (tests); now by default. */
  date?: Date;
  /** Seconds after creation when the key expires; never by default. */
  keyExpirationTime?: number;
}

/** A newly generated service key. */
export interface GeneratedServiceKey {
  /** Armored private key, encrypted with the passphrase. */
  privateKey: string;
  /** Armored public key: what the peer pins. */
  publicKey: string;
  /** Primary-key fingerprint, upper-case hex. */
  fingerprint: string;
  /** The user ID, e.g. `care-relay app <app@care-relay.invalid>`. */
  userId: string;
}

/** The user ID of a service key (informational only: trust is by fingerprint, never user ID). */
export function serviceUserId(service: string): { name: string; email: string } {
  return { name: `care-relay ${service}`, email: `${service}@care-relay.invalid` };
}

/** Generates a passphrase-protected v4 Curve25519 key for a service (readable by GnuPG 2.2). */
export async function generateServiceKey(options: GenerateServiceKeyOptions): Promise<GeneratedServiceKey> {
  if (!SERVICE_NAME_PATTERN.test(options.service)) {
    throw new TypeError(`service name must match ${SERVICE_NAME_PATTERN}`);
  }
  if (typeof options.passphrase !== 'string' || options.passphrase === '') {
    throw new KeyError('CR_KEY_PASSPHRASE_MISSING', `a passphrase is required to protect the ${options.service} private key`);
  }
  const userId = serviceUserId(options.service);
  const { privateKey, publicKey } = await generateKey({
    ...KEY_ALGORITHM,
    userIDs: [userId],
    passphrase: options.passphrase,
    format: 'object',
    ...(options.date ? { date: options.date } : {}),
    ...(options.keyExpirationTime ? { keyExpirationTime: options.keyExpirationTime } : {}),
  });
  return {
    privateKey: privateKey.armor(),
    publicKey: publicKey.armor(),
    fingerprint: fingerprintOf(publicKey),
    userId: `${userId.name} <${userId.email}>`,
  };
}
