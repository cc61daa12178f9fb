import { decrypt, readMessage, type Message, type VerifyMessageResult } from 'openpgp';
import { findPinnedByKeyId, keyStatus, ownDecryptionKeys, subkeyStatus, type OwnKeyring, type PeerKeyring } from '../keys/keyring.ts';
import { MAX_ARMORED_CHARS, dearmorMessage } from './armor.ts';
import { keyPacketsAreCanonical } from './canonical.ts';
import { decodeEnvelope, digestMatches, type Envelope } from './envelope.ts';
import { EnvelopeError } from './errors.ts';

/** Largest decrypted (and decompressed) plaintext accepted: a guard against compression bombs. */
export const MAX_PLAINTEXT_BYTES = 4 * 1024 * 1024;

/** What {@link open} checks a message against. */
export interface OpenContext {
  /** Own keys: any of them may decrypt. */
  own: OwnKeyring;
  /** Pinned peer keys: the only accepted signers. */
  peers: PeerKeyring;
  /** This service's name: the envelope `to` must equal it. */
  self: string;
  /** The logical queue the message was received on: the envelope `queue` must equal it. */
  queue: string;
  /** Current time (tests); now by default. */
  now?: Date;
  /** Allowed clock skew: `sentAt` (and the signature time) may be this far in the future. */
  maxSkewMs: number;
  /** Maximum age of `sentAt` (the queue's retention). */
  maxAgeMs: number;
}

/** An opened message with who signed it. */
export interface OpenedMessage {
  /** The validated envelope. */
  envelope: Envelope;
  /** The pinned peer key that signed it. */
  signer: {
    /** Peer name (its file name under peers/). */
    name: string;
    /** The peer service that key speaks for: the envelope `from` equals it. */
    service: string;
    /** Primary-key fingerprint, upper-case hex. */
    fingerprint: string;
    /** Signature creation time. */
    signedAt: Date;
  };
}

type Signatures = VerifyMessageResult['signatures'];

function fail(code: EnvelopeError['code'], message: string, cause?: unknown): never {
  throw new EnvelopeError(code, message, cause);
}

async function checkSignatures(signatures: Signatures, peers: PeerKeyring): Promise<OpenedMessage['signer']> {
  if (signatures.length === 0) fail('CR_ENVELOPE_SIGNATURE_MISSING', 'message is encrypted but not signed');
  let signer: OpenedMessage['signer'] | undefined;
  // Every signature must be valid and from a pinned key: no unpinned co-signer is tolerated.
  for (const sig of signatures) {
    const keyId = sig.keyID.toHex().toUpperCase();
    const pinned = findPinnedByKeyId(peers, sig.keyID);
    if (!pinned) fail('CR_ENVELOPE_SIGNER_NOT_PINNED', `signed by key ID ${keyId}, which belongs to no pinned peer key`);
    let signedAt: Date | null | undefined;
    try {
      signedAt = (await sig.signature).packets[0]?.created;
    } catch (err) {
      fail('CR_ENVELOPE_SIGNATURE_INVALID', `signature by key ID ${keyId} cannot be read`, err);
    }
    if (!(signedAt instanceof Date)) fail('CR_ENVELOPE_SIGNATURE_INVALID', `signature by key ID ${keyId} has no creation time`);
    const at = signedAt.toISOString();
    try {
      // openpgp.js checks, after the signature itself, that the signing key and subkey were valid
      // (not revoked, not expired) at the signature's creation time, with the same functions as
      // keyStatus: a verified signature needs no second check. Only a failure is classified.
      await sig.verified;
    } catch (err) {
      const signingKey = pinned.key.getKeys(sig.keyID)[0];
      const primary = await keyStatus(pinned.key, signedAt);
      const sub = signingKey !== undefined && signingKey !== pinned.key ? await subkeyStatus(signingKey as Parameters<typeof subkeyStatus>[0], signedAt) : primary;
      if (primary === 'revoked' || sub === 'revoked') {
        fail('CR_ENVELOPE_SIGNING_KEY_REVOKED', `signing key ${keyId} of pinned peer ${pinned.name} ${pinned.fingerprint} is revoked (signature of ${at})`, err);
      }
      if (primary === 'expired' || sub === 'expired') {
        fail('CR_ENVELOPE_SIGNING_KEY_EXPIRED', `signing key ${keyId} of pinned peer ${pinned.name} ${pinned.fingerprint} was expired when it signed (${at})`, err);
      }
      fail('CR_ENVELOPE_SIGNATURE_INVALID', `signature by pinned peer ${pinned.name} ${pinned.fingerprint} does not verify`, err);
    }
    signer ??= { name: pinned.name, service: pinned.service, fingerprint: pinned.fingerprint, signedAt };
  }
  return signer!;
}

function checkContext(ctx: OpenContext): void {
  // A bad context is a configuration bug, not a bad message: it must not quarantine traffic.
  const ms = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (!ctx || !ctx.own || !ctx.peers || typeof ctx.self !== 'string' || typeof ctx.queue !== 'string' || !ms(ctx.maxSkewMs) || !ms(ctx.maxAgeMs)) {
    throw new TypeError('open: context needs own, peers, self, queue, and non-negative maxSkewMs and maxAgeMs');
  }
}

async function openChecked(armored: unknown, ctx: OpenContext): Promise<OpenedMessage> {
  const now = ctx.now ?? new Date();
  if (typeof armored !== 'string') fail('CR_ENVELOPE_NOT_OPENPGP', 'message body is not text');
  if (armored.length > MAX_ARMORED_CHARS) {
    fail('CR_ENVELOPE_MALFORMED', `message body of ${armored.length} characters exceeds the ${MAX_ARMORED_CHARS} limit`);
  }
  const binary = dearmorMessage(armored);
  const config = { maxDecompressedMessageSize: MAX_PLAINTEXT_BYTES };
  let message: Message<Uint8Array>;
  try {
    message = await readMessage({ binaryMessage: binary, config });
  } catch (err) {
    fail('CR_ENVELOPE_NOT_OPENPGP', 'not a well-formed OpenPGP message', err);
  }
  if (!keyPacketsAreCanonical(binary, message)) fail('CR_ENVELOPE_NOT_OPENPGP', 'a session key packet is not canonically encoded (altered in transit)');
  if (message.getEncryptionKeyIDs().length === 0) {
    fail('CR_ENVELOPE_UNDECRYPTABLE', 'message is not encrypted to a public key (signed-only, literal or password-encrypted)');
  }
  let result: { data: Uint8Array; signatures: Signatures };
  try {
    result = await decrypt({
      message,
      decryptionKeys: ownDecryptionKeys(ctx.own),
      verificationKeys: ctx.peers.pinned.map((p) => p.key),
      expectSigned: false,
      format: 'binary',
      // Signatures up to the allowed skew in the future are not "from the future" yet.
      date: new Date(now.getTime() + ctx.maxSkewMs),
      config,
    });
  } catch (err) {
    fail('CR_ENVELOPE_UNDECRYPTABLE', 'cannot decrypt: not encrypted to an own key, or the ciphertext is damaged', err);
  }
  const signer = await checkSignatures(result.signatures, ctx.peers);
  const envelope = decodeEnvelope(result.data);
  // From here the id and kind are signed by a pinned peer: a refusal can name them (a rejection receipt).
  const refuse = (code: EnvelopeError['code'], message: string): never => {
    throw new EnvelopeError(code, message, undefined, { id: envelope.id, kind: envelope.kind });
  };
  if (envelope.to !== ctx.self) refuse('CR_ENVELOPE_WRONG_RECIPIENT', `envelope is addressed to "${envelope.to}"; this service is "${ctx.self}"`);
  // A pinned peer may speak only for itself: the interface key cannot send as "app".
  if (envelope.from !== signer.service) {
    refuse('CR_ENVELOPE_WRONG_SENDER', `envelope says it is from "${envelope.from}" but is signed by pinned peer "${signer.service}" ${signer.fingerprint}`);
  }
  if (envelope.queue !== ctx.queue) refuse('CR_ENVELOPE_WRONG_QUEUE', `envelope was sent on "${envelope.queue}" but received on "${ctx.queue}"`);
  if (!digestMatches(envelope)) refuse('CR_ENVELOPE_DIGEST_MISMATCH', 'envelope sha256 does not match the decoded body');
  const sentAt = Date.parse(envelope.sentAt);
  if (sentAt > now.getTime() + ctx.maxSkewMs) {
    refuse('CR_ENVELOPE_FROM_FUTURE', `envelope sentAt ${envelope.sentAt} is more than ${ctx.maxSkewMs} ms ahead of ${now.toISOString()}`);
  }
  if (sentAt < now.getTime() - ctx.maxAgeMs) {
    refuse('CR_ENVELOPE_TOO_OLD', `envelope sentAt ${envelope.sentAt} is more than ${ctx.maxAgeMs} ms before ${now.toISOString()}`);
  }
  return { envelope, signer };
}

/**
 * Like {@link open}, and also says which pinned key signed. Throws EnvelopeError for any
 * message that cannot be accepted (never another error for bad input); TypeError for a bad context.
 */
export async function openMessage(armored: unknown, ctx: OpenContext): Promise<OpenedMessage> {
  checkContext(ctx);
  try {
    return await openChecked(armored, ctx);
  } catch (err) {
    if (err instanceof EnvelopeError) throw err;
    throw new EnvelopeError('CR_ENVELOPE_MALFORMED', 'message could not be processed', err);
  }
}

/**
 * Decrypts with any own key, requires a valid signature from a pinned peer primary-key
 * fingerprint (signing key valid at signature time), then checks the envelope: schema,
 * `to`, `from` (the signing peer's service), `queue`, digest, and `sentAt` within skew and age. Throws EnvelopeError (`CR_ENVELOPE_*`).
 */
export async function open(armored: unknown, ctx: OpenContext): Promise<Envelope> {
  return (await openMessage(armored, ctx)).envelope;
}
