// envelope/inlineSubtle.ts against Node's own WebCrypto: the same bytes out of every operation it takes
// over, the same refusals (DOMException names) for bad keys and bad input, keys it did not make handed
// to Node's methods, and envelopes sealed one way opened the other. test/setup.ts installs it for every
// test file, as the services do by default.
import { generateKeyPairSync, randomBytes, type webcrypto } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { open } from '../../../services/core/envelope/open.ts';
import { seal } from '../../../services/core/envelope/seal.ts';
import { IMPORTED_KEYS_KEPT, forgetImportedKeys, inlineSubtleInstalled, installInlineSubtle, uninstallInlineSubtle } from '../../../services/core/envelope/inlineSubtle.ts';
import { makeServiceKeyPair, type TestServiceKeyPair } from '../../helpers/keys.ts';
import { appContext, sampleEnvelope } from './craft.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type JsonWebKey = webcrypto.JsonWebKey;

const subtle = globalThis.crypto.subtle;
/** Node's own methods, whatever is installed on the object. */
const native = Object.getPrototypeOf(subtle) as webcrypto.SubtleCrypto;
const call = <K extends keyof webcrypto.SubtleCrypto>(method: K, ...args: unknown[]): Promise<never> =>
  (native[method] as (...a: unknown[]) => Promise<never>).call(subtle, ...args);

const ed = generateKeyPairSync('ed25519');
const edPrivate = ed.privateKey.export({ format: 'jwk' }) as JsonWebKey;
const edPublic = ed.publicKey.export({ format: 'jwk' }) as JsonWebKey;
const x = generateKeyPairSync('x25519');
const xPrivate = x.privateKey.export({ format: 'jwk' }) as JsonWebKey;
const xPublic = x.publicKey.export({ format: 'jwk' }) as JsonWebKey;
const data = randomBytes(48);
const kek = randomBytes(16);
const sessionKey = randomBytes(32);
const bytes = (b: ArrayBuffer): Buffer => Buffer.from(new Uint8Array(b));

afterEach(() => installInlineSubtle());

describe('inlineSubtle', () => {
  it('is installed for the tests, as the services install it', () => {
    expect(inlineSubtleInstalled()).toBe(true);
    expect(Object.hasOwn(subtle, 'sign')).toBe(true);
    uninstallInlineSubtle();
    expect(inlineSubtleInstalled()).toBe(false);
    expect(Object.hasOwn(subtle, 'sign')).toBe(false);
  });

  it(`Ed25519: the same signature as WebCrypto, and each verifies the other's`, async () => {
    const inlineKey = await subtle.importKey('jwk', edPrivate, 'Ed25519', false, ['sign']);
    const nativeKey: CryptoKey = await call('importKey', 'jwk', edPrivate, 'Ed25519', false, ['sign']);
    const ours = bytes(await subtle.sign('Ed25519', inlineKey, data));
    const theirs = bytes(await call('sign', 'Ed25519', nativeKey, data));
    expect(ours.equals(theirs)).toBe(true);
    const inlinePublic = await subtle.importKey('jwk', edPublic, { name: 'Ed25519' }, true, ['verify']);
    const nativePublic: CryptoKey = await call('importKey', 'jwk', edPublic, 'Ed25519', true, ['verify']);
    expect(await subtle.verify('Ed25519', inlinePublic, theirs, data)).toBe(true);
    expect(await call('verify', 'Ed25519', nativePublic, ours, data)).toBe(true);
    const flipped = Buffer.from(ours);
    flipped[5]! ^= 1;
    expect(await subtle.verify('Ed25519', inlinePublic, flipped, data)).toBe(false);
    expect(await subtle.verify('Ed25519', inlinePublic, ours.subarray(0, 40), data)).toBe(false);
    expect(await subtle.verify('Ed25519', inlinePublic, ours, Buffer.concat([data, Buffer.from([0])]))).toBe(false);
  });

  it(`X25519: generated keys are Node's CryptoKeys, and the shared secret is WebCrypto's, whole and truncated`, async () => {
    const pair = (await subtle.generateKey('X25519', true, ['deriveKey', 'deriveBits'])) as CryptoKeyPair;
    expect(pair.publicKey).toBeInstanceOf(globalThis.CryptoKey);
    expect(pair.publicKey.usages).toEqual([]);
    expect(pair.privateKey.usages.sort()).toEqual(['deriveBits', 'deriveKey']);
    const exported = (await subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey;
    expect(exported.crv).toBe('X25519');
    const peer = await subtle.importKey('jwk', xPublic, 'X25519', false, []);
    const ours = bytes(await subtle.deriveBits({ name: 'X25519', public: peer }, pair.privateKey, 256));
    const theirs = bytes(await call('deriveBits', { name: 'X25519', public: peer }, pair.privateKey, 256));
    expect(ours.equals(theirs)).toBe(true);
    // The other side, with keys imported as openpgp.js imports them.
    const own = await subtle.importKey('jwk', xPrivate, 'X25519', false, ['deriveKey', 'deriveBits']);
    const ephemeral = await subtle.importKey('jwk', exported, 'X25519', false, []);
    expect(bytes(await subtle.deriveBits({ name: 'X25519', public: ephemeral }, own, 256)).equals(ours)).toBe(true);
    expect(bytes(await subtle.deriveBits({ name: 'X25519', public: ephemeral }, own, null)).equals(ours)).toBe(true);
    expect(bytes(await subtle.deriveBits({ name: 'X25519', public: ephemeral }, own, 128)).equals(ours.subarray(0, 16))).toBe(true);
  });

  it(`AES-KW: the same wrapped bytes as WebCrypto, and each unwraps the other's`, async () => {
    const wrapping = await subtle.importKey('raw', kek, { name: 'AES-KW' }, false, ['wrapKey', 'unwrapKey']);
    const nativeWrapping: CryptoKey = await call('importKey', 'raw', kek, { name: 'AES-KW' }, false, ['wrapKey', 'unwrapKey']);
    const toWrap = await subtle.importKey('raw', sessionKey, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    const ours = bytes(await subtle.wrapKey('raw', toWrap, wrapping, { name: 'AES-KW' }));
    const theirs = bytes(await call('wrapKey', 'raw', toWrap, nativeWrapping, { name: 'AES-KW' }));
    expect(ours.equals(theirs)).toBe(true);
    const unwrapped = await subtle.unwrapKey('raw', theirs, wrapping, { name: 'AES-KW' }, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    expect(unwrapped).toBeInstanceOf(globalThis.CryptoKey);
    expect(bytes((await subtle.exportKey('raw', unwrapped)) as ArrayBuffer).equals(sessionKey)).toBe(true);
  });

  it('refuses what WebCrypto refuses, with the same DOMException names', async () => {
    const verifyOnly = await subtle.importKey('jwk', edPublic, 'Ed25519', false, ['verify']);
    await expect(subtle.sign('Ed25519', verifyOnly, data)).rejects.toMatchObject({ name: 'InvalidAccessError' });
    const signOnly = await subtle.importKey('jwk', edPrivate, 'Ed25519', false, ['sign']);
    await expect(subtle.verify('Ed25519', signOnly, Buffer.alloc(64), data)).rejects.toMatchObject({ name: 'InvalidAccessError' });
    await expect(subtle.generateKey('X25519', true, ['sign'])).rejects.toMatchObject({ name: 'SyntaxError' });
    // A low-order point: the all-zero shared secret is refused.
    const own = await subtle.importKey('jwk', xPrivate, 'X25519', false, ['deriveBits']);
    const zero = await subtle.importKey('jwk', { kty: 'OKP', crv: 'X25519', x: Buffer.alloc(32).toString('base64url') }, 'X25519', false, []);
    await expect(subtle.deriveBits({ name: 'X25519', public: zero }, own, 256)).rejects.toMatchObject({ name: 'OperationError' });
    await expect(call('deriveBits', { name: 'X25519', public: zero }, own, 256)).rejects.toMatchObject({ name: 'OperationError' });
    const noDerive = await subtle.importKey('jwk', xPrivate, 'X25519', false, ['deriveKey']);
    const peer = await subtle.importKey('jwk', xPublic, 'X25519', false, []);
    await expect(subtle.deriveBits({ name: 'X25519', public: peer }, noDerive, 256)).rejects.toMatchObject({ name: 'InvalidAccessError' });
    // A key not meant for wrapping, a key that may not leave, a tampered wrapping.
    const unwrapOnly = await subtle.importKey('raw', kek, { name: 'AES-KW' }, false, ['unwrapKey']);
    const secret = await subtle.importKey('raw', sessionKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const extractable = await subtle.importKey('raw', sessionKey, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
    await expect(subtle.wrapKey('raw', extractable, unwrapOnly, { name: 'AES-KW' })).rejects.toMatchObject({ name: 'InvalidAccessError' });
    const wrapping = await subtle.importKey('raw', kek, { name: 'AES-KW' }, false, ['wrapKey', 'unwrapKey']);
    await expect(subtle.wrapKey('raw', secret, wrapping, { name: 'AES-KW' })).rejects.toMatchObject({ name: 'InvalidAccessError' });
    const wrapped = bytes(await subtle.wrapKey('raw', extractable, wrapping, { name: 'AES-KW' }));
    wrapped[3]! ^= 0x40;
    await expect(subtle.unwrapKey('raw', wrapped, wrapping, { name: 'AES-KW' }, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign'])).rejects.toMatchObject({ name: 'OperationError' });
    await expect(subtle.unwrapKey('raw', wrapped.subarray(0, 20), wrapping, { name: 'AES-KW' }, { name: 'HMAC', hash: 'SHA-256' }, true, ['sign'])).rejects.toMatchObject({ name: 'OperationError' });
    // A malformed JWK never gets past Node's import.
    await expect(subtle.importKey('jwk', { ...edPrivate, x: edPublic.x!.slice(2) }, 'Ed25519', false, ['sign'])).rejects.toMatchObject({ name: 'DataError' });
  });

  it(`hands keys it did not make, and everything else, to Node's WebCrypto`, async () => {
    const nativeKey: CryptoKey = await call('importKey', 'jwk', edPrivate, 'Ed25519', false, ['sign']);
    const nativePublic: CryptoKey = await call('importKey', 'jwk', edPublic, 'Ed25519', false, ['verify']);
    const signature = await subtle.sign('Ed25519', nativeKey, data);
    expect(await subtle.verify('Ed25519', nativePublic, signature, data)).toBe(true);
    const hmac = await subtle.importKey('raw', kek, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    expect(bytes(await subtle.sign('HMAC', hmac, data)).length).toBe(32);
    const pair = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])) as CryptoKeyPair;
    const ecdsa = await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, data);
    expect(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, ecdsa, data)).toBe(true);
  });

  describe('keys imported again', () => {
    /** Runs `body` with Node's importKey counted (installed anew, so the installation calls the counted one). */
    const countingNodeImports = async (body: (imports: () => number) => Promise<void>): Promise<void> => {
      uninstallInlineSubtle();
      const spy = vi.spyOn(native, 'importKey');
      forgetImportedKeys();
      installInlineSubtle();
      try {
        await body(() => spy.mock.calls.length);
      } finally {
        uninstallInlineSubtle();
        spy.mockRestore();
        forgetImportedKeys();
        installInlineSubtle();
      }
    };
    const describeKey = (k: CryptoKey): unknown => ({ algorithm: k.algorithm, type: k.type, extractable: k.extractable, usages: k.usages });
    const publicJwk = (): JsonWebKey => generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }) as JsonWebKey;

    it(`a JWK imported again with the same arguments is made from the kept key, without Node's importKey, equal to Node's and working`, async () => {
      await countingNodeImports(async (imports) => {
        const first = await subtle.importKey('jwk', { ...edPrivate }, 'Ed25519', false, ['sign']);
        expect(imports()).toBe(1);
        // openpgp.js builds a new JWK object for every operation: equal fields, not the same object.
        const again = await subtle.importKey('jwk', { ...edPrivate }, 'Ed25519', false, ['sign']);
        expect(imports()).toBe(1);
        expect(again).not.toBe(first);
        const nativeKey: CryptoKey = await call('importKey', 'jwk', edPrivate, 'Ed25519', false, ['sign']);
        expect(describeKey(again)).toEqual(describeKey(nativeKey));
        expect(bytes(await subtle.sign('Ed25519', again, data))).toEqual(bytes(await call('sign', 'Ed25519', nativeKey, data)));
        // The same for the X25519 keys an open imports: the own private key, and a public one.
        // (The native import above was one of Node's too.)
        const own = await subtle.importKey('jwk', { ...xPrivate }, 'X25519', false, ['deriveKey', 'deriveBits']);
        const peer = await subtle.importKey('jwk', { ...xPublic }, 'X25519', false, []);
        expect(imports()).toBe(4);
        const ownAgain = await subtle.importKey('jwk', { ...xPrivate }, 'X25519', false, ['deriveKey', 'deriveBits']);
        const peerAgain = await subtle.importKey('jwk', { ...xPublic }, { name: 'X25519' }, false, []);
        expect(imports()).toBe(4);
        expect(describeKey(ownAgain)).toEqual(describeKey(own));
        expect(describeKey(peerAgain)).toEqual(describeKey(peer));
        expect(bytes(await subtle.deriveBits({ name: 'X25519', public: peerAgain }, ownAgain, 256))).toEqual(bytes(await subtle.deriveBits({ name: 'X25519', public: peer }, own, 256)));
      });
    });

    it('an import that differs in anything (usages, extractable, a JWK field) goes to Node; a refused one is refused again', async () => {
      await countingNodeImports(async (imports) => {
        await subtle.importKey('jwk', { ...edPublic }, 'Ed25519', false, ['verify']);
        const extractable = await subtle.importKey('jwk', { ...edPublic }, 'Ed25519', true, ['verify']);
        expect(extractable.extractable).toBe(true);
        const noUsages = await subtle.importKey('jwk', { ...edPublic }, 'Ed25519', false, []);
        expect(noUsages.usages).toEqual([]);
        await subtle.importKey('jwk', { ...edPublic, key_ops: ['verify'] }, 'Ed25519', false, ['verify']);
        expect(imports()).toBe(4);
        // `ext: false` with extractable true is a DataError every time: a refusal is never kept.
        for (let i = 0; i < 2; i++) {
          await expect(subtle.importKey('jwk', { ...edPublic, ext: false }, 'Ed25519', true, ['verify'])).rejects.toMatchObject({ name: 'DataError' });
        }
        await expect(subtle.importKey('jwk', { ...edPrivate }, 'Ed25519', false, [])).rejects.toMatchObject({ name: 'SyntaxError' });
        await expect(subtle.importKey('jwk', { ...edPrivate }, 'Ed25519', false, [])).rejects.toMatchObject({ name: 'SyntaxError' });
        expect(imports()).toBe(8);
      });
    });

    it(`keeps the ${IMPORTED_KEYS_KEPT} keys used last: one used on every operation stays while other keys pass through`, async () => {
      await countingNodeImports(async (imports) => {
        const importOwn = () => subtle.importKey('jwk', { ...xPrivate }, 'X25519', false, ['deriveBits']);
        await importOwn();
        // An open imports its own key and a new ephemeral public key: the own key is used between them.
        for (let i = 0; i < 3 * IMPORTED_KEYS_KEPT; i++) {
          await subtle.importKey('jwk', publicJwk(), 'X25519', false, []);
          if (i % (IMPORTED_KEYS_KEPT - 2) === 0) await importOwn();
        }
        const before = imports();
        await importOwn();
        expect(imports()).toBe(before);
        // Not used while as many other keys were imported: gone, made by Node again.
        for (let i = 0; i < IMPORTED_KEYS_KEPT; i++) await subtle.importKey('jwk', publicJwk(), 'X25519', false, []);
        await importOwn();
        expect(imports()).toBe(before + IMPORTED_KEYS_KEPT + 1);
        forgetImportedKeys();
        await importOwn();
        expect(imports()).toBe(before + IMPORTED_KEYS_KEPT + 2);
      });
    });
  });

  describe('envelopes', () => {
    let keys: TestServiceKeyPair;
    beforeAll(async () => {
      keys = await makeServiceKeyPair();
    });
    afterAll(() => keys?.cleanup());

    it(`an envelope sealed with the calls inline opens with Node's WebCrypto, and the other way round`, async () => {
      const envelope = sampleEnvelope();
      const ctx = appContext(keys.app);
      const inlineSealed = await seal(envelope, keys.interface.own, keys.interface.peers);
      uninstallInlineSubtle();
      expect((await open(inlineSealed.body, ctx)).id).toBe(envelope.id);
      const nativeSealed = await seal(envelope, keys.interface.own, keys.interface.peers);
      installInlineSubtle();
      expect((await open(nativeSealed.body, ctx)).id).toBe(envelope.id);
    });
  });
});
