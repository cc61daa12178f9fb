import { createMessage, encrypt, enums } from 'openpgp';
import { KeyError } from '../keys/errors.ts';
import type { OwnKeyring, PeerKeyring } from '../keys/keyring.ts';
import { armorMessage } from './armor.ts';
import { ENVELOPE_VERSION, digestMatches, encodeEnvelope, validateEnvelope, type Envelope } from './envelope.ts';
import { EnvelopeError } from './errors.ts';
import { sealKeys } from './sealKeys.ts';

/** One SQS message attribute, in the shape SendMessage takes (`MessageAttributeValue`). */
export interface WireAttribute {
  /** Always `String`. */
  DataType: 'String';
  /** The value. */
  StringValue: string;
}

/** The only three attributes outside the ciphertext: no PHI, no partner, no kind (a type, so it fits `Record<string, MessageAttributeValue>`). */
export type WireAttributes = {
  /** Wire format version, `1`. */
  'cr-version': WireAttribute;
  /** The envelope id (UUIDv7). */
  'cr-envelope-id': WireAttribute;
  /** The signer's primary-key fingerprint, upper-case hex. */
  'cr-signer': WireAttribute;
};

/** A sealed message: the SQS body and attributes. */
export interface SealedMessage {
  /** ASCII-armored OpenPGP message (signed then encrypted, one pass). */
  body: string;
  /** The SQS message attributes to send with it. */
  attributes: WireAttributes;
}

/** Options for {@link seal}. */
export interface SealOptions {
  /** Signature time and key-validity time (tests); now by default. */
  now?: Date;
}

/** Builds the three wire attributes for an envelope signed by `signerFingerprint`. */
export function wireAttributes(envelopeId: string, signerFingerprint: string): WireAttributes {
  const attr = (value: string): WireAttribute => ({ DataType: 'String', StringValue: value });
  return {
    'cr-version': attr(String(ENVELOPE_VERSION)),
    'cr-envelope-id': attr(envelopeId),
    'cr-signer': attr(signerFingerprint.toUpperCase()),
  };
}

/**
 * Signs the envelope with the own current key and encrypts it to the newest valid pinned
 * peer key, in one pass, ASCII-armored. Throws EnvelopeError (`CR_ENVELOPE_MALFORMED`,
 * `CR_ENVELOPE_DIGEST_MISMATCH`) for a bad envelope and KeyError when no key can be used.
 */
export async function seal(envelope: Envelope, own: OwnKeyring, peers: PeerKeyring, options: SealOptions = {}): Promise<SealedMessage> {
  const now = options.now ?? new Date();
  const valid = validateEnvelope(envelope);
  if (!digestMatches(valid)) throw new EnvelopeError('CR_ENVELOPE_DIGEST_MISMATCH', 'envelope sha256 does not match its body; build it with buildEnvelope');
  const recipient = await sealKeys(own, peers, now);
  const message = await createMessage({ binary: new TextEncoder().encode(encodeEnvelope(valid)), format: 'binary' });
  let binary: Uint8Array;
  try {
    // Binary out of openpgp.js, armored here in one pass: the same text, for less CPU (armor.ts).
    binary = await encrypt({
      message,
      encryptionKeys: recipient.key,
      signingKeys: own.current,
      format: 'binary',
      date: now,
      // SEIPDv1 and no compression: what GnuPG 2.2 reads, and no size oracle from compression.
      config: { aeadProtect: false, preferredCompressionAlgorithm: enums.compression.uncompressed },
    });
  } catch (err) {
    throw new KeyError('CR_KEY_NOT_A_KEY', `cannot sign with own key ${own.fingerprint} or encrypt to ${recipient.name} ${recipient.fingerprint}`, err);
  }
  return { body: armorMessage(binary), attributes: wireAttributes(valid.id, own.fingerprint) };
}
