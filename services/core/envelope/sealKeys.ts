import { KeyError } from '../keys/errors.ts';
import { keyStatus, peerEncryptionKey, type OwnKeyring, type PeerKeyring, type PinnedPeerKey } from '../keys/keyring.ts';

/**
 * How long a positive key check of {@link sealKeys} is reused: a second. openpgp.js checks
 * the same keys again inside every encrypt (signing key and encryption subkey valid at the
 * signature time), so reuse never lets an expired or revoked key sign or encrypt; it only
 * means that, in the second after a key expires, the refusal says `CR_KEY_NOT_A_KEY`
 * instead of `CR_KEY_EXPIRED` (docs/benchmarks.md, "Security consequence of each knob").
 */
export const SEAL_KEY_CHECK_REUSE_MS = 1000;

interface Checked {
  peers: PeerKeyring;
  from: number;
  recipient: PinnedPeerKey;
}

// Keyrings are immutable once loaded (a reload builds new ones): a WeakMap entry dies with its keyring.
const checked = new WeakMap<OwnKeyring, Checked>();

/**
 * The own key checked valid at `now` and the peer key to encrypt to (the newest valid pinned one).
 * Throws KeyError `CR_KEY_REVOKED` / `CR_KEY_EXPIRED` / `CR_KEY_NO_PEERS`; a positive answer is
 * reused for {@link SEAL_KEY_CHECK_REUSE_MS} for the same keyrings and a `now` inside that window.
 */
export async function sealKeys(own: OwnKeyring, peers: PeerKeyring, now: Date): Promise<PinnedPeerKey> {
  const t = now.getTime();
  const hit = checked.get(own);
  if (hit && hit.peers === peers && t >= hit.from && t < hit.from + SEAL_KEY_CHECK_REUSE_MS) return hit.recipient;
  const ownStatus = await keyStatus(own.current, now);
  if (ownStatus === 'revoked') throw new KeyError('CR_KEY_REVOKED', `own key ${own.fingerprint} is revoked; rotate to a new key`);
  if (ownStatus === 'expired') throw new KeyError('CR_KEY_EXPIRED', `own key ${own.fingerprint} has expired; rotate to a new key`);
  const recipient = await peerEncryptionKey(peers, now);
  checked.set(own, { peers, from: t, recipient });
  return recipient;
}
