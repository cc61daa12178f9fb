import type { Key, KeyID, PrivateKey, PublicKey, Subkey } from 'openpgp';
import { KeyError } from './errors.ts';

/** This service's own private keys, already decrypted in memory. */
export interface OwnKeyring {
  /** The current key: signs and decrypts. */
  readonly current: PrivateKey;
  /** Older own keys kept during a rotation: decrypt only, newest first. */
  readonly older: readonly PrivateKey[];
  /** Primary-key fingerprint of `current`, upper-case hex (the `cr-signer` attribute). */
  readonly fingerprint: string;
}

/** One pinned peer public key. */
export interface PinnedPeerKey {
  /** Peer name (the file name under peers/ without `.asc`). */
  readonly name: string;
  /** The peer service this key speaks for (the name without a rotation suffix): envelopes it signs must say `from` this. */
  readonly service: string;
  /** Primary-key fingerprint, upper-case hex: the pin. */
  readonly fingerprint: string;
  /** The public key. */
  readonly key: PublicKey;
}

/** The peer keys this service trusts, pinned by primary-key fingerprint, newest first. */
export interface PeerKeyring {
  /** Pinned keys, newest (by key creation time) first, one per fingerprint. */
  readonly pinned: readonly PinnedPeerKey[];
}

/** Validity of a key or subkey at a given time. */
export type KeyStatus = 'valid' | 'expired' | 'revoked' | 'invalid';

/** The primary-key fingerprint of a key, upper-case hex. */
export function fingerprintOf(key: Key): string {
  return key.getFingerprint().toUpperCase();
}

/** Builds an own keyring from decrypted private keys (the first signs; all decrypt). */
export function ownKeyring(current: PrivateKey, older: readonly PrivateKey[] = []): OwnKeyring {
  const sorted = [...older].sort((a, b) => b.getCreationTime().getTime() - a.getCreationTime().getTime());
  return Object.freeze({ current, older: Object.freeze(sorted), fingerprint: fingerprintOf(current) });
}

/** Suffix `keys add-peer` gives a second key pinned for the same peer during a rotation: `-` and 16 hex digits. */
const ROTATION_SUFFIX = /-[0-9A-Fa-f]{16}$/;

/**
 * The service a peer key file speaks for: its name (`peers/interface.asc` → `interface`), without the
 * rotation suffix `keys add-peer` adds beside an existing pin (`interface-0123456789ABCDEF` → `interface`).
 */
export function peerServiceName(name: string): string {
  return name.replace(ROTATION_SUFFIX, '');
}

/** Builds a peer keyring: public parts only, one entry per primary fingerprint, newest first. */
export function peerKeyring(keys: ReadonlyArray<{ name: string; key: Key }>): PeerKeyring {
  const byFingerprint = new Map<string, PinnedPeerKey>();
  for (const { name, key } of keys) {
    const fingerprint = fingerprintOf(key);
    if (!byFingerprint.has(fingerprint)) byFingerprint.set(fingerprint, Object.freeze({ name, service: peerServiceName(name), fingerprint, key: key.toPublic() }));
  }
  const pinned = [...byFingerprint.values()].sort((a, b) => b.key.getCreationTime().getTime() - a.key.getCreationTime().getTime());
  return Object.freeze({ pinned: Object.freeze(pinned) });
}

/** All own keys that may decrypt: current first, then older ones. */
export function ownDecryptionKeys(own: OwnKeyring): PrivateKey[] {
  return [own.current, ...own.older];
}

/** The pinned key holding the (sub)key with this key ID, if any. Never matches by user ID. */
export function findPinnedByKeyId(peers: PeerKeyring, keyID: KeyID): PinnedPeerKey | undefined {
  return peers.pinned.find((p) => p.key.getKeys(keyID).length > 0);
}

/** The pinned key with this primary fingerprint (any case), if any. */
export function findPinnedByFingerprint(peers: PeerKeyring, fingerprint: string): PinnedPeerKey | undefined {
  const fp = fingerprint.toUpperCase();
  return peers.pinned.find((p) => p.fingerprint === fp);
}

/** Validity of a primary key at `date`: revoked, expired, otherwise invalid, or valid. */
export async function keyStatus(key: Key, date: Date = new Date()): Promise<KeyStatus> {
  try {
    if (await key.isRevoked(undefined, undefined, date)) return 'revoked';
    await key.verifyPrimaryKey(date);
    return 'valid';
  } catch (err) {
    return /expired/i.test(String((err as Error)?.message)) ? 'expired' : 'invalid';
  }
}

/** Validity of a subkey at `date` (the primary key is checked separately with {@link keyStatus}). */
export async function subkeyStatus(subkey: Subkey, date: Date = new Date()): Promise<KeyStatus> {
  try {
    // A null signature asks "is any revocation of this subkey valid at `date`".
    if (await subkey.isRevoked(null as never, null as never, date)) return 'revoked';
    await subkey.verify(date);
    return 'valid';
  } catch (err) {
    const message = String((err as Error)?.message);
    if (/revoked/i.test(message)) return 'revoked';
    return /expired/i.test(message) ? 'expired' : 'invalid';
  }
}

/**
 * The newest pinned peer key that can encrypt at `date`. Throws KeyError `CR_KEY_NO_PEERS`
 * when nothing is pinned, else `CR_KEY_EXPIRED` / `CR_KEY_REVOKED` naming the unusable keys.
 */
export async function peerEncryptionKey(peers: PeerKeyring, date: Date = new Date()): Promise<PinnedPeerKey> {
  if (peers.pinned.length === 0) throw new KeyError('CR_KEY_NO_PEERS', 'no peer key is pinned: add the peer public key under peers/');
  const problems: Array<{ name: string; fingerprint: string; status: KeyStatus }> = [];
  for (const pinned of peers.pinned) {
    const status = await keyStatus(pinned.key, date);
    if (status === 'valid') {
      try {
        await pinned.key.getEncryptionKey(undefined, date);
        return pinned;
      } catch (err) {
        const message = String((err as Error)?.message);
        problems.push({ ...pinned, status: /revoked/i.test(message) ? 'revoked' : /expired/i.test(message) ? 'expired' : 'invalid' });
        continue;
      }
    }
    problems.push({ ...pinned, status });
  }
  const list = problems.map((p) => `${p.name} ${p.fingerprint} ${p.status}`).join(', ');
  const code = problems.some((p) => p.status === 'expired') ? 'CR_KEY_EXPIRED' : problems.some((p) => p.status === 'revoked') ? 'CR_KEY_REVOKED' : 'CR_KEY_NO_PEERS';
  throw new KeyError(code, `no pinned peer key can encrypt now (${list})`);
}
