import { createMessage, readSignature, sign, verify, type PrivateKey, type PublicKey } from 'openpgp';
import { z } from 'zod';
import { canonicalJson } from './chain.ts';

/** What a service signs: its trail's head at a sequence number, and when. */
export interface Checkpoint {
  /** Service whose trail this is. */
  service: string;
  /** seq of the trail's last durable line when signed. */
  seq: number;
  /** hash of that line. */
  headHash: string;
  /** RFC 3339 UTC time of signing (also the signature's creation time). */
  at: string;
}

/** A checkpoint with the service's detached OpenPGP signature over its canonical JSON. */
export interface SignedCheckpoint {
  /** The signed statement. */
  checkpoint: Checkpoint;
  /** Primary-key fingerprint of the signer, upper-case hex (informative; verification uses the given keys). */
  signer: string;
  /** ASCII-armored detached signature over `canonicalJson(checkpoint)`. */
  signature: string;
}

/** The envelope kind that carries a signed checkpoint to the peer for witnessing. */
export const CHECKPOINT_KIND = 'audit.checkpoint';

const checkpointSchema = z.strictObject({
  service: z.string().min(1).max(64),
  seq: z.number().int().min(0),
  headHash: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.iso.datetime(),
});

/** Shape of a stored or relayed signed checkpoint. */
export const signedCheckpointSchema = z.strictObject({
  checkpoint: checkpointSchema,
  signer: z.string().regex(/^[0-9A-F]{40,64}$/),
  signature: z.string().min(1).max(16_384),
});

/** Parses a signed checkpoint from JSON text; returns why when it is not one. */
export function parseSignedCheckpoint(text: string): { signed: SignedCheckpoint } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { reason: 'malformed JSON' };
  }
  const parsed = signedCheckpointSchema.safeParse(value);
  if (!parsed.success) return { reason: `not a signed checkpoint (${parsed.error.issues[0]!.path.join('.') || 'root'})` };
  return { signed: parsed.data };
}

/** Signs a checkpoint with the service's current private key; the signature is dated `checkpoint.at`. */
export async function signCheckpoint(checkpoint: Checkpoint, key: PrivateKey): Promise<SignedCheckpoint> {
  const message = await createMessage({ text: canonicalJson(checkpoint) });
  const signature = await sign({ message, signingKeys: key, detached: true, format: 'armored', date: new Date(checkpoint.at) });
  return { checkpoint, signer: key.getFingerprint().toUpperCase(), signature };
}

/** Checks a signed checkpoint against the given public keys (any one may have signed). */
export async function verifyCheckpoint(signed: SignedCheckpoint, keys: readonly PublicKey[]): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (keys.length === 0) return { ok: false, reason: 'no public key to verify against' };
  try {
    const signature = await readSignature({ armoredSignature: signed.signature });
    const message = await createMessage({ text: canonicalJson(signed.checkpoint) });
    const result = await verify({ message, signature, verificationKeys: [...keys], date: new Date(signed.checkpoint.at), expectSigned: true });
    await Promise.all(result.signatures.map((s) => s.verified));
    return { ok: true };
  } catch {
    return { ok: false, reason: 'signature is invalid or not by the service\'s key' };
  }
}
