// Crafting messages the way a broken or hostile sender would, with openpgp directly.
import { createMessage, encrypt, generateKey, sign, type PrivateKey, type PublicKey } from 'openpgp';
import { buildEnvelope, encodeEnvelope, type Envelope, type EnvelopeInput } from '../../../services/core/envelope/envelope.ts';
import type { OpenContext } from '../../../services/core/envelope/open.ts';
import { KEY_ALGORITHM, serviceUserId } from '../../../services/core/keys/generate.ts';
import type { TestServiceKeys } from '../../helpers/keys.ts';

/** A valid interface-to-app envelope (override any input field). */
export function sampleEnvelope(overrides: Partial<EnvelopeInput> = {}, now?: Date): Envelope {
  return buildEnvelope(
    {
      kind: 'care.submission',
      from: 'interface',
      to: 'app',
      queue: 'interface-to-app',
      partner: 'acme-health',
      contentType: 'application/fhir+json',
      body: '{"resourceType":"Patient","id":"example"}',
      ...overrides,
    },
    now,
  );
}

/** The app side's open context for interface-to-app. */
export function appContext(app: TestServiceKeys, overrides: Partial<OpenContext> = {}): OpenContext {
  return { own: app.own, peers: app.peers, self: 'app', queue: 'interface-to-app', maxSkewMs: 60_000, maxAgeMs: 4 * 86_400_000, ...overrides };
}

/** Options for {@link craft}. */
export interface CraftOptions {
  /** Keys to sign with; none for an unsigned message. */
  signingKeys?: PrivateKey[];
  /** Keys to encrypt to; none for a signed-only message. */
  encryptionKeys?: PublicKey[];
  /** Signature/encryption time. */
  date?: Date;
}

/** Signs and/or encrypts arbitrary plaintext (an envelope object is JSON-encoded). */
export async function craft(plaintext: Envelope | string | Uint8Array, options: CraftOptions): Promise<string> {
  const bytes =
    plaintext instanceof Uint8Array ? plaintext : new TextEncoder().encode(typeof plaintext === 'string' ? plaintext : encodeEnvelope(plaintext));
  const message = await createMessage({ binary: bytes });
  const date = options.date ?? new Date();
  if (!options.encryptionKeys?.length) {
    return sign({ message, signingKeys: options.signingKeys ?? [], format: 'armored', date });
  }
  return encrypt({
    message,
    encryptionKeys: options.encryptionKeys,
    ...(options.signingKeys?.length ? { signingKeys: options.signingKeys } : {}),
    format: 'armored',
    date,
  });
}

/** A decrypted key with the same user ID as a service (an impostor, or a key for special cases). */
export async function unprotectedKey(
  service: string,
  extra: { date?: Date; keyExpirationTime?: number; signingSubkeyExpiration?: number } = {},
): Promise<PrivateKey> {
  const { privateKey } = await generateKey({
    ...KEY_ALGORITHM,
    userIDs: [serviceUserId(service)],
    format: 'object',
    ...(extra.date ? { date: extra.date } : {}),
    ...(extra.keyExpirationTime ? { keyExpirationTime: extra.keyExpirationTime } : {}),
    ...(extra.signingSubkeyExpiration ? { subkeys: [{}, { sign: true, keyExpirationTime: extra.signingSubkeyExpiration }] } : {}),
  });
  return privateKey;
}
