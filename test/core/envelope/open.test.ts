import { createMessage, encrypt, enums, revokeKey, sign, type PrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodySha256, buildEnvelope, encodeEnvelope, type Envelope } from '../../../services/core/envelope/envelope.ts';
import { EnvelopeError, type EnvelopeErrorCode } from '../../../services/core/envelope/errors.ts';
import { open, openMessage } from '../../../services/core/envelope/open.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { isKeyError } from '../../../services/core/keys/errors.ts';
import { ownKeyring, peerKeyring } from '../../../services/core/keys/keyring.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { appContext, craft, sampleEnvelope, unprotectedKey } from './craft.ts';

let keys: TestServiceKeyPair;
let appPublic: Awaited<ReturnType<typeof publicOf>>;
const publicOf = (k: TestServiceKeyPair['app']) => k.own.current.toPublic();

beforeAll(async () => {
  keys = await makeServiceKeyPair();
  appPublic = publicOf(keys.app);
});
afterAll(() => keys.cleanup());

async function expectRejected(promise: Promise<unknown>, code: EnvelopeErrorCode): Promise<EnvelopeError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(EnvelopeError);
  expect((err as EnvelopeError).code).toBe(code);
  expect((err as EnvelopeError).message).not.toMatch(/\n/);
  return err as EnvelopeError;
}

/** Signed by the pinned interface key, encrypted to the app: only the envelope is wrong. */
async function sealedRaw(plaintext: Envelope | string | Uint8Array, date?: Date): Promise<string> {
  return craft(plaintext, { signingKeys: [keys.interface.own.current], encryptionKeys: [appPublic], ...(date ? { date } : {}) });
}

describe('seal and open', () => {
  it('round-trips an envelope with exactly the three wire attributes', async () => {
    const envelope = sampleEnvelope();
    const sealed = await seal(envelope, keys.interface.own, keys.interface.peers);
    expect(sealed.body).toMatch(/^-----BEGIN PGP MESSAGE-----\n/);
    expect(sealed.body).not.toContain('Patient');
    expect(sealed.attributes).toEqual({
      'cr-version': { DataType: 'String', StringValue: '1' },
      'cr-envelope-id': { DataType: 'String', StringValue: envelope.id },
      'cr-signer': { DataType: 'String', StringValue: keys.interface.fingerprint },
    });
    expect(keys.interface.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    const opened = await openMessage(sealed.body, appContext(keys.app));
    expect(opened.envelope).toEqual(envelope);
    expect(opened.signer).toMatchObject({ name: 'interface', fingerprint: keys.interface.fingerprint });
  });

  it('round-trips a binary (base64) body and the other direction', async () => {
    const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/hl7-v2', body: new Uint8Array([0, 1, 2, 255, 13, 10]) });
    const sealed = await seal(envelope, keys.app.own, keys.app.peers);
    const ctx = { own: keys.interface.own, peers: keys.interface.peers, self: 'interface', queue: 'app-to-interface', maxSkewMs: 1000, maxAgeMs: 60_000 };
    expect(await open(sealed.body, ctx)).toEqual(envelope);
  });

  it('refuses to seal a malformed envelope or one whose digest is wrong', async () => {
    const envelope = sampleEnvelope();
    await expectRejected(seal({ ...envelope, sha256: bodySha256({ body: 'x', bodyEncoding: 'utf8' }) }, keys.interface.own, keys.interface.peers), 'CR_ENVELOPE_DIGEST_MISMATCH');
    await expectRejected(seal({ ...envelope, extra: 1 } as Envelope, keys.interface.own, keys.interface.peers), 'CR_ENVELOPE_MALFORMED');
  });

  it('refuses to seal with no pinned peer (KeyError)', async () => {
    const err = await seal(sampleEnvelope(), keys.interface.own, peerKeyring([])).catch((e: unknown) => e);
    expect(isKeyError(err, 'CR_KEY_NO_PEERS')).toBe(true);
  });

  it('throws TypeError (not a quarantine code) for a broken context', async () => {
    await expect(open('x', { ...appContext(keys.app), maxAgeMs: Number.NaN })).rejects.toThrow(TypeError);
  });
});

describe('open rejects', () => {
  it('non-OpenPGP input: CR_ENVELOPE_NOT_OPENPGP', async () => {
    for (const input of ['', 'hello', '{"v":1}', keys.app.publicKey, 42, null, { body: 'x' }]) {
      await expectRejected(open(input, appContext(keys.app)), 'CR_ENVELOPE_NOT_OPENPGP');
    }
  });

  it('absurdly large input before parsing: CR_ENVELOPE_MALFORMED', async () => {
    await expectRejected(open('A'.repeat(2 * 1024 * 1024 + 1), appContext(keys.app)), 'CR_ENVELOPE_MALFORMED');
  });

  it('a message encrypted to another key: CR_ENVELOPE_UNDECRYPTABLE', async () => {
    const stranger = await unprotectedKey('app');
    const body = await craft(sampleEnvelope(), { signingKeys: [keys.interface.own.current], encryptionKeys: [stranger.toPublic()] });
    await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_UNDECRYPTABLE');
  });

  it('a signed-only (not encrypted) message: CR_ENVELOPE_UNDECRYPTABLE', async () => {
    const body = await craft(sampleEnvelope(), { signingKeys: [keys.interface.own.current] });
    const err = await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_UNDECRYPTABLE');
    expect(err.message).toMatch(/not encrypted/);
  });

  it('a password-encrypted message: CR_ENVELOPE_UNDECRYPTABLE', async () => {
    const body = await encrypt({ message: await createMessage({ text: encodeEnvelope(sampleEnvelope()) }), passwords: ['pw'], format: 'armored' });
    await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_UNDECRYPTABLE');
  });

  it('an encrypted but unsigned message: CR_ENVELOPE_SIGNATURE_MISSING', async () => {
    const body = await craft(sampleEnvelope(), { encryptionKeys: [appPublic] });
    await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_SIGNATURE_MISSING');
  });

  it('a signature over other data: CR_ENVELOPE_SIGNATURE_INVALID', async () => {
    const signed = await sign({ message: await createMessage({ binary: new TextEncoder().encode(encodeEnvelope(sampleEnvelope())) }), signingKeys: keys.interface.own.current, format: 'object' });
    const literal = signed.packets.findPacket(enums.packet.literalData) as unknown as { setBytes(b: Uint8Array, f: enums.literal): void };
    literal.setBytes(new TextEncoder().encode(encodeEnvelope(sampleEnvelope({ body: 'swapped' }))), enums.literal.binary);
    const body = await encrypt({ message: signed, encryptionKeys: appPublic, format: 'armored' });
    await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_SIGNATURE_INVALID');
  });

  it('a key with the same user ID but another fingerprint: CR_ENVELOPE_SIGNER_NOT_PINNED', async () => {
    const impostor = await unprotectedKey('interface');
    expect(impostor.getUserIDs()).toEqual(keys.interface.own.current.getUserIDs());
    const body = await craft(sampleEnvelope(), { signingKeys: [impostor], encryptionKeys: [appPublic] });
    const err = await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_SIGNER_NOT_PINNED');
    expect(err.message).toContain(impostor.getKeyID().toHex().toUpperCase());
  });

  it('a pinned signer plus an unpinned co-signer: CR_ENVELOPE_SIGNER_NOT_PINNED', async () => {
    const other = await unprotectedKey('interface');
    const body = await craft(sampleEnvelope(), { signingKeys: [keys.interface.own.current, other], encryptionKeys: [appPublic] });
    await expectRejected(open(body, appContext(keys.app)), 'CR_ENVELOPE_SIGNER_NOT_PINNED');
  });

  describe('signing key validity at signature time', () => {
    const hour = 3_600_000;
    const created = new Date(Date.now() - 3 * hour);
    let signer: PrivateKey;
    // The recipient key must exist when the (back-dated) messages are encrypted.
    let recipient: PrivateKey;
    const ctx = (peers: ReturnType<typeof peerKeyring>) => appContext(keys.app, { own: ownKeyring(recipient), peers });

    beforeAll(async () => {
      // Signing subkey valid for one hour after creation; the primary never expires.
      signer = await unprotectedKey('interface', { date: created, signingSubkeyExpiration: 3600 });
      recipient = await unprotectedKey('app', { date: new Date(created.getTime() - hour) });
    });

    /** Signs with the signing subkey whatever openpgp thinks of its validity (a hostile or broken sender). */
    async function signedWithSubkeyAt(date: Date): Promise<string> {
      const subkey = signer.subkeys.find((s) => s.getAlgorithmInfo().algorithm === 'eddsaLegacy')!;
      const forced = Object.assign(Object.create(Object.getPrototypeOf(signer) as object) as PrivateKey, signer, { getSigningKey: async () => subkey });
      return craft(sampleEnvelope({}, date), { signingKeys: [forced], encryptionKeys: [recipient.toPublic()], date });
    }

    it('accepts a signature made while the subkey was valid, even after it expired', async () => {
      const peers = peerKeyring([{ name: 'interface', key: signer.toPublic() }]);
      const body = await signedWithSubkeyAt(new Date(created.getTime() + hour / 2));
      const opened = await openMessage(body, ctx(peers));
      expect(opened.signer.fingerprint).toBe(signer.getFingerprint().toUpperCase());
    });

    it('rejects a signature made after the subkey expired: CR_ENVELOPE_SIGNING_KEY_EXPIRED', async () => {
      const peers = peerKeyring([{ name: 'interface', key: signer.toPublic() }]);
      const body = await signedWithSubkeyAt(new Date(created.getTime() + 2 * hour));
      await expectRejected(open(body, ctx(peers)), 'CR_ENVELOPE_SIGNING_KEY_EXPIRED');
    });

    it('rejects a signature by an expired primary key: CR_ENVELOPE_SIGNING_KEY_EXPIRED', async () => {
      const expiring = await unprotectedKey('interface', { date: created, keyExpirationTime: 3600 });
      const forced = Object.assign(Object.create(Object.getPrototypeOf(expiring) as object) as PrivateKey, expiring, { getSigningKey: async () => expiring });
      const date = new Date(created.getTime() + 2 * hour);
      const body = await craft(sampleEnvelope({}, date), { signingKeys: [forced], encryptionKeys: [recipient.toPublic()], date });
      const peers = peerKeyring([{ name: 'interface', key: expiring.toPublic() }]);
      await expectRejected(open(body, ctx(peers)), 'CR_ENVELOPE_SIGNING_KEY_EXPIRED');
    });

    it('rejects a signature by a revoked pinned key: CR_ENVELOPE_SIGNING_KEY_REVOKED', async () => {
      const key = await unprotectedKey('interface');
      const { publicKey: revoked } = await revokeKey({ key, format: 'object', reasonForRevocation: { flag: enums.reasonForRevocation.keyCompromised } });
      const body = await craft(sampleEnvelope(), { signingKeys: [key], encryptionKeys: [appPublic] });
      const peers = peerKeyring([{ name: 'interface', key: revoked }]);
      await expectRejected(open(body, appContext(keys.app, { peers })), 'CR_ENVELOPE_SIGNING_KEY_REVOKED');
    });
  });

  it('an envelope for another service: CR_ENVELOPE_WRONG_RECIPIENT', async () => {
    await expectRejected(open(await sealedRaw(sampleEnvelope({ to: 'interface' })), appContext(keys.app)), 'CR_ENVELOPE_WRONG_RECIPIENT');
  });

  it('an envelope whose from is not the pinned peer that signed it (app signed by the interface key): CR_ENVELOPE_WRONG_SENDER', async () => {
    for (const from of ['app', 'interface-old', 'emr']) {
      const err = await expectRejected(open(await sealedRaw(sampleEnvelope({ from })), appContext(keys.app)), 'CR_ENVELOPE_WRONG_SENDER');
      expect(err.message).toContain(`signed by pinned peer "interface"`);
    }
    // A key pinned during a rotation (peers/interface-<16 hex>.asc) still speaks for "interface".
    const rotationPin = peerKeyring([{ name: `interface-${keys.interface.fingerprint.slice(-16)}`, key: keys.interface.own.current.toPublic() }]);
    const ok = await openMessage(await sealedRaw(sampleEnvelope()), appContext(keys.app, { peers: rotationPin }));
    expect(ok.signer).toMatchObject({ service: 'interface', fingerprint: keys.interface.fingerprint });
    const otherPin = peerKeyring([{ name: 'partner', key: keys.interface.own.current.toPublic() }]);
    await expectRejected(open(await sealedRaw(sampleEnvelope()), appContext(keys.app, { peers: otherPin })), 'CR_ENVELOPE_WRONG_SENDER');
  });

  it('an envelope from another queue: CR_ENVELOPE_WRONG_QUEUE', async () => {
    await expectRejected(open(await sealedRaw(sampleEnvelope({ queue: 'app-sms-redaction' })), appContext(keys.app)), 'CR_ENVELOPE_WRONG_QUEUE');
  });

  it('a body that does not match sha256: CR_ENVELOPE_DIGEST_MISMATCH', async () => {
    const envelope = { ...sampleEnvelope(), body: '{"resourceType":"Patient","id":"other"}' };
    await expectRejected(open(await sealedRaw(envelope), appContext(keys.app)), 'CR_ENVELOPE_DIGEST_MISMATCH');
  });

  it('sentAt beyond the allowed skew: CR_ENVELOPE_FROM_FUTURE (within the skew is fine)', async () => {
    const now = new Date();
    const ahead = (ms: number) => new Date(now.getTime() + ms);
    await expectRejected(open(await sealedRaw(sampleEnvelope({}, ahead(120_000)), now), appContext(keys.app, { now })), 'CR_ENVELOPE_FROM_FUTURE');
    // Signature and sentAt 30 s ahead of the receiver's clock: within the 60 s skew.
    const env = sampleEnvelope({}, ahead(30_000));
    expect(await open(await sealedRaw(env, ahead(30_000)), appContext(keys.app, { now }))).toEqual(env);
  });

  it('sentAt older than maxAgeMs: CR_ENVELOPE_TOO_OLD', async () => {
    const old = new Date(Date.now() - 5 * 86_400_000);
    await expectRejected(open(await sealedRaw(sampleEnvelope({}, old)), appContext(keys.app)), 'CR_ENVELOPE_TOO_OLD');
  });

  it('plaintext that is not a v1 envelope: CR_ENVELOPE_MALFORMED', async () => {
    const good = sampleEnvelope();
    const { partner: _partner, ...withoutPartner } = good;
    const cases: Array<string | Uint8Array> = [
      'not json',
      '[]',
      'null',
      new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
      `\ufeff${encodeEnvelope(good)}`,
      JSON.stringify({ ...good, extra: 'x' }),
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ ...good, id: 'not-a-uuid' }),
      JSON.stringify({ ...good, sentAt: '2026-01-01 00:00:00' }),
      JSON.stringify({ ...good, bodyEncoding: 'hex' }),
      JSON.stringify({ ...good, bodyEncoding: 'base64' }),
      JSON.stringify({ ...good, sha256: good.sha256.toUpperCase() }),
      JSON.stringify((({ kind: _k, ...rest }) => rest)(good)),
    ];
    for (const plaintext of cases) {
      const err = await expectRejected(open(await sealedRaw(plaintext), appContext(keys.app)), 'CR_ENVELOPE_MALFORMED');
      expect(err.message).not.toContain('Patient');
    }
    // partner is optional.
    const partnerless = withoutPartner as Envelope;
    expect(await open(await sealedRaw(partnerless), appContext(keys.app))).toEqual(partnerless);
  });
});
