// openpgp.js 6 does its Curve25519 and AES key-wrap work through WebCrypto (`globalThis.crypto.subtle`),
// and Node runs every such WebCrypto call as a job on libuv's thread pool: the calling thread hands the
// job over, a pool thread wakes, runs an operation of tens of microseconds, and wakes the calling thread
// again. A seal makes four such trips and an open three. Node's own `crypto` module runs the same
// operations (the same OpenSSL code) on the calling thread. Measured on 2 cores, the curve and key-wrap
// calls of a seal cost 399 µs of CPU through WebCrypto and 210 µs synchronously, an open's 408 and 243,
// and a whole seal + open about a third less (bench/webCryptoHop.ts; docs/benchmarks.md, "openpgp.js's
// WebCrypto calls on the calling thread").
//
// `installInlineSubtle` gives the process's SubtleCrypto object its own `importKey`, `generateKey`,
// `sign`, `verify`, `deriveBits`, `wrapKey` and `unwrapKey`, which run these operations on the calling
// thread and hand everything else to Node's WebCrypto:
// - Ed25519 signatures and verifications, and X25519 key agreement and key generation, for keys
//   imported as JWK or generated after installation;
// - AES-KW wrapping and unwrapping of a raw key, for wrapping keys imported raw after installation.
// Keys stay Node's own CryptoKey objects, made and checked by Node's WebCrypto (`importKey` is Node's,
// run first); for each key it imported or generated, the module also keeps the same key as a KeyObject,
// in a WeakMap that nothing else reads. openpgp.js imports the same Ed25519 and X25519 keys from JWK for
// every operation; an import asked again with the same JWK fields, algorithm, extractable and usages as
// one of the last IMPORTED_KEYS_KEPT gets a new CryptoKey made from that import's KeyObject
// (`KeyObject.toCryptoKey`), without deriving the key again (the module keeps those KeyObjects by a digest
// of what was asked, no key material in a string). A key it does not know (made before installation, or by
// another realm) goes to Node's WebCrypto as before. The checks WebCrypto makes before these operations
// (the key's algorithm, type and usages; extractable for wrapping; the output length) are made here too,
// failing with the same DOMException names; a failed agreement (a low-order point) or unwrap (integrity)
// is an `OperationError`, as in WebCrypto. The outputs are byte for byte WebCrypto's: Ed25519 is
// deterministic, X25519 and AES-KW are functions (test/core/envelope/inlineSubtle.test.ts compares
// each with Node's WebCrypto, and the envelope's GnuPG tests run through it).
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, generateKeyPairSync, sign as signOneShot, verify as verifyOneShot, type JsonWebKey as NodeJsonWebKey, type KeyObject, type webcrypto } from 'node:crypto';

type SubtleCrypto = webcrypto.SubtleCrypto;
type CryptoKey = webcrypto.CryptoKey;
type KeyType = webcrypto.KeyType;
type KeyUsage = webcrypto.KeyUsage;

/** The methods replaced on the SubtleCrypto object. */
const METHODS = ['importKey', 'generateKey', 'sign', 'verify', 'deriveBits', 'wrapKey', 'unwrapKey'] as const;
type Method = (typeof METHODS)[number];
/** Node's own methods, bound to the SubtleCrypto object: the replaced ones, and `exportKey`. */
type Original = Record<Method | 'exportKey', (...args: unknown[]) => Promise<unknown>>;

/**
 * Marks an installed SubtleCrypto object; holds Node's own methods, bound to it. A registered symbol: a
 * second copy of this module in the same thread (a test runner's fresh module graph) sees the first's
 * installation and leaves it, with the keys it knows, in place.
 */
const INSTALLED = Symbol.for('care-relay.inlineSubtle');
type Installed = SubtleCrypto & { [INSTALLED]?: Original };

/** The same key as a KeyObject (Ed25519, X25519) or its raw bytes' KeyObject (AES-KW), per CryptoKey made after installation. */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

/**
 * How many Ed25519 and X25519 keys imported from JWK are kept, by what was imported ({@link importId}). openpgp.js
 * imports the same key from JWK for every operation (the own signing key for each seal, the own X25519 key for each
 * open, the peer's keys), and each import of a private key derives its public point (about 45 µs in Node's importKey,
 * as much again for the KeyObject). A repeated import makes the CryptoKey from the kept KeyObject instead. The newest
 * imports are kept; each open's ephemeral public key passes through, and the keys used on every operation stay.
 */
export const IMPORTED_KEYS_KEPT = 64;

/** Imported keys by {@link importId}, oldest use first (a Map keeps insertion order). */
const imported = new Map<string, KeyObject>();

/** RFC 3394's default initial value, which WebCrypto's AES-KW uses. */
const AES_KW_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');
const AES_KW_CIPHERS: Record<number, string> = { 16: 'id-aes128-wrap', 24: 'id-aes192-wrap', 32: 'id-aes256-wrap' };

/** The algorithm's name, lower case (`'Ed25519'` and `{ name: 'Ed25519' }` alike); undefined when it has none. */
function algorithmName(algorithm: unknown): string | undefined {
  const name = typeof algorithm === 'string' ? algorithm : typeof algorithm === 'object' && algorithm !== null ? (algorithm as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name.toLowerCase() : undefined;
}

/** The bytes of a BufferSource, without a copy. */
function bytesOf(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}

/** A fresh ArrayBuffer holding `bytes`, as WebCrypto answers. */
function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

const invalidAccess = (message: string): DOMException => new DOMException(message, 'InvalidAccessError');
const operationError = (message: string, cause?: unknown): DOMException => {
  const err = new DOMException(message, 'OperationError');
  if (cause !== undefined) Object.defineProperty(err, 'cause', { value: cause, configurable: true, writable: true });
  return err;
};

/** Throws WebCrypto's InvalidAccessError unless `key` is of `name`, of `type` and allowed `usage`. */
function checkKey(key: CryptoKey, name: string, type: KeyType, usage: KeyUsage): void {
  if (key.algorithm.name.toLowerCase() !== name) throw invalidAccess(`The key is not a ${name} key`);
  if (key.type !== type) throw invalidAccess(`The key is not a ${type} key`);
  if (!key.usages.includes(usage)) throw invalidAccess(`The key's usages do not include ${usage}`);
}

/** The KeyObject kept for `key` when it is a CryptoKey this module made; undefined otherwise. */
function known(key: unknown): KeyObject | undefined {
  return typeof key === 'object' && key !== null ? keyObjects.get(key as CryptoKey) : undefined;
}

/**
 * What an Ed25519 or X25519 JWK import was asked, as a SHA-256 digest (no key material kept in a string): the
 * algorithm's name, `extractable`, the usages in their order, and every field of the JWK with its value. Undefined
 * (not kept) for a JWK with a field that is not a string, a boolean or a list of strings, or for any further argument.
 * Node's importKey is a function of these, so an import with the same id succeeds as the first did and makes an
 * equal key.
 */
function importId(name: string, jwk: unknown, extractable: unknown, usages: unknown, rest: unknown[]): string | undefined {
  if (rest.length > 0 || typeof extractable !== 'boolean' || !Array.isArray(usages) || !usages.every((u) => typeof u === 'string')) return undefined;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk) || Object.getPrototypeOf(jwk) !== Object.prototype) return undefined;
  const fields: [string, unknown][] = [];
  for (const [field, value] of Object.entries(jwk)) {
    const plain = typeof value === 'string' || typeof value === 'boolean' || (Array.isArray(value) && value.every((v) => typeof v === 'string'));
    if (!plain) return undefined;
    fields.push([field, value]);
  }
  fields.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return createHash('sha256').update(JSON.stringify([name, extractable, usages, fields])).digest('base64');
}

/** Keeps `keyObject` under `id`, as the newest; the oldest goes past {@link IMPORTED_KEYS_KEPT}. */
function keep(id: string, keyObject: KeyObject): void {
  imported.delete(id);
  imported.set(id, keyObject);
  if (imported.size > IMPORTED_KEYS_KEPT) imported.delete(imported.keys().next().value!);
}

/** Forgets every imported key kept (tests, and bench/keyImportCpu.ts to measure imports made anew). */
export function forgetImportedKeys(): void {
  imported.clear();
}

/** The AES-KW cipher's output, or WebCrypto's OperationError. */
function aesKw(decrypt: boolean, kek: KeyObject, data: Uint8Array): Buffer {
  const cipherName = AES_KW_CIPHERS[kek.symmetricKeySize ?? 0];
  if (!cipherName) throw operationError('Unsupported AES-KW key length');
  if (data.byteLength % 8 !== 0 || data.byteLength < (decrypt ? 24 : 16)) throw operationError('AES-KW data must be a multiple of 8 bytes, at least 16 to wrap and 24 to unwrap');
  try {
    const cipher = decrypt ? createDecipheriv(cipherName, kek, AES_KW_IV) : createCipheriv(cipherName, kek, AES_KW_IV);
    return Buffer.concat([cipher.update(data), cipher.final()]);
  } catch (err) {
    throw operationError(decrypt ? 'AES-KW unwrap failed (integrity check)' : 'AES-KW wrap failed', err);
  }
}

/** A SubtleCrypto method, loosely typed (its overloads do not survive a wrapper). */
type AnyMethod = (...args: unknown[]) => Promise<unknown>;

/** The replacements; each answers through `original` whenever it is not one of the cases above. */
function inlineMethods(original: Original): Record<Method, AnyMethod> {
  return {
    async importKey(format: unknown, keyData: unknown, algorithm: unknown, ...rest: unknown[]): Promise<CryptoKey> {
      const name = algorithmName(algorithm);
      const curveJwk = format === 'jwk' && (name === 'ed25519' || name === 'x25519');
      const id = curveJwk ? importId(name, keyData, rest[0], rest[1], rest.slice(2)) : undefined;
      const kept = id === undefined ? undefined : imported.get(id);
      if (kept) {
        // The same import succeeded before: the same key, algorithm, extractable and usages, made from the kept KeyObject.
        const key = kept.toCryptoKey(algorithm as webcrypto.AlgorithmIdentifier, rest[0] as boolean, rest[1] as KeyUsage[]);
        keyObjects.set(key, kept);
        keep(id!, kept);
        return key;
      }
      // Node's WebCrypto makes and checks the key (JWK fields, lengths, usages); no job runs for an import.
      const key = (await original.importKey(format, keyData, algorithm, ...rest)) as CryptoKey;
      if (curveJwk) {
        const jwk = keyData as NodeJsonWebKey;
        const keyObject = key.type === 'private' ? createPrivateKey({ key: jwk, format: 'jwk' }) : createPublicKey({ key: jwk, format: 'jwk' });
        keyObjects.set(key, keyObject);
        if (id !== undefined) keep(id, keyObject);
      } else if (format === 'raw' && name === 'aes-kw') {
        const raw = bytesOf(keyData);
        if (raw) keyObjects.set(key, createSecretKey(raw));
      }
      return key;
    },

    async generateKey(algorithm: unknown, extractable: unknown, usages: unknown, ...rest: unknown[]): Promise<unknown> {
      if (algorithmName(algorithm) !== 'x25519' || typeof extractable !== 'boolean' || !Array.isArray(usages)) return original.generateKey(algorithm, extractable, usages, ...rest);
      const allowed: readonly unknown[] = ['deriveKey', 'deriveBits'];
      if (usages.length === 0 || usages.some((u) => !allowed.includes(u))) throw new DOMException('Unsupported key usage for an X25519 key', 'SyntaxError');
      const pair = generateKeyPairSync('x25519');
      const publicKey = pair.publicKey.toCryptoKey({ name: 'X25519' }, true, []);
      const privateKey = pair.privateKey.toCryptoKey({ name: 'X25519' }, extractable, [...new Set(usages as KeyUsage[])]);
      keyObjects.set(publicKey, pair.publicKey);
      keyObjects.set(privateKey, pair.privateKey);
      return { publicKey, privateKey };
    },

    async sign(algorithm: unknown, key: unknown, data: unknown, ...rest: unknown[]): Promise<unknown> {
      const keyObject = known(key);
      const bytes = bytesOf(data);
      if (algorithmName(algorithm) !== 'ed25519' || !keyObject || !bytes) return original.sign(algorithm, key, data, ...rest);
      checkKey(key as CryptoKey, 'ed25519', 'private', 'sign');
      return arrayBufferOf(signOneShot(null, bytes, keyObject));
    },

    async verify(algorithm: unknown, key: unknown, signature: unknown, data: unknown, ...rest: unknown[]): Promise<unknown> {
      const keyObject = known(key);
      const bytes = bytesOf(data);
      const sig = bytesOf(signature);
      if (algorithmName(algorithm) !== 'ed25519' || !keyObject || !bytes || !sig) return original.verify(algorithm, key, signature, data, ...rest);
      checkKey(key as CryptoKey, 'ed25519', 'public', 'verify');
      return verifyOneShot(null, bytes, keyObject, sig);
    },

    async deriveBits(algorithm: unknown, baseKey: unknown, length: unknown, ...rest: unknown[]): Promise<unknown> {
      const own = known(baseKey);
      const peerKey = typeof algorithm === 'object' && algorithm !== null ? (algorithm as { public?: unknown }).public : undefined;
      const peer = known(peerKey);
      const bits = length ?? 256;
      if (algorithmName(algorithm) !== 'x25519' || !own || !peer || typeof bits !== 'number' || bits % 8 !== 0 || bits > 256) return original.deriveBits(algorithm, baseKey, length, ...rest);
      checkKey(baseKey as CryptoKey, 'x25519', 'private', 'deriveBits');
      const peerCryptoKey = peerKey as CryptoKey;
      if (peerCryptoKey.algorithm.name.toLowerCase() !== 'x25519' || peerCryptoKey.type !== 'public') throw invalidAccess('The public key is not an X25519 public key');
      let secret: Buffer;
      try {
        secret = diffieHellman({ privateKey: own, publicKey: peer });
      } catch (err) {
        // OpenSSL refuses an all-zero shared secret (a low-order point), as WebCrypto must.
        throw operationError('X25519 key agreement failed', err);
      }
      const out = arrayBufferOf(secret.subarray(0, bits / 8));
      secret.fill(0);
      return out;
    },

    async wrapKey(format: unknown, key: unknown, wrappingKey: unknown, wrapAlgorithm: unknown, ...rest: unknown[]): Promise<unknown> {
      const kek = known(wrappingKey);
      if (format !== 'raw' || algorithmName(wrapAlgorithm) !== 'aes-kw' || !kek) return original.wrapKey(format, key, wrappingKey, wrapAlgorithm, ...rest);
      checkKey(wrappingKey as CryptoKey, 'aes-kw', 'secret', 'wrapKey');
      if (!(key as CryptoKey).extractable) throw invalidAccess('The key to wrap is not extractable');
      // Node's exportKey runs no job: it copies the key's bytes.
      const raw = new Uint8Array((await original.exportKey('raw', key)) as ArrayBuffer);
      try {
        return arrayBufferOf(aesKw(false, kek, raw));
      } finally {
        raw.fill(0);
      }
    },

    async unwrapKey(format: unknown, wrappedKey: unknown, unwrappingKey: unknown, unwrapAlgorithm: unknown, unwrappedKeyAlgorithm: unknown, extractable: unknown, keyUsages: unknown, ...rest: unknown[]): Promise<unknown> {
      const kek = known(unwrappingKey);
      const wrapped = bytesOf(wrappedKey);
      if (format !== 'raw' || algorithmName(unwrapAlgorithm) !== 'aes-kw' || !kek || !wrapped) {
        return original.unwrapKey(format, wrappedKey, unwrappingKey, unwrapAlgorithm, unwrappedKeyAlgorithm, extractable, keyUsages, ...rest);
      }
      checkKey(unwrappingKey as CryptoKey, 'aes-kw', 'secret', 'unwrapKey');
      const raw = aesKw(true, kek, wrapped);
      try {
        return await original.importKey('raw', raw, unwrappedKeyAlgorithm, extractable, keyUsages);
      } finally {
        raw.fill(0);
      }
    },
  };
}

/**
 * Runs openpgp.js's Ed25519, X25519 and AES-KW WebCrypto calls on the calling thread (see above), on
 * this realm's `crypto.subtle` unless another object is given. Idempotent. Each thread that seals or
 * opens installs it for itself (the runtime and each crypto worker, when `CRYPTO_INLINE` is on).
 */
export function installInlineSubtle(subtle: SubtleCrypto = globalThis.crypto.subtle): void {
  const target = subtle as Installed;
  if (target[INSTALLED]) return;
  const proto = Object.getPrototypeOf(subtle) as SubtleCrypto;
  const original = Object.fromEntries([...METHODS, 'exportKey' as const].map((m) => [m, (proto[m] as AnyMethod).bind(subtle)])) as Original;
  const methods = inlineMethods(original);
  for (const m of METHODS) Object.defineProperty(target, m, { value: methods[m], writable: true, configurable: true, enumerable: false });
  Object.defineProperty(target, INSTALLED, { value: original, configurable: true });
}

/** Gives `subtle` its own methods back (tests; a thread that turns `CRYPTO_INLINE` off). Keys made meanwhile keep working through Node's methods. */
export function uninstallInlineSubtle(subtle: SubtleCrypto = globalThis.crypto.subtle): void {
  const target = subtle as Installed;
  if (!target[INSTALLED]) return;
  for (const m of METHODS) delete (target as unknown as Record<string, unknown>)[m];
  delete target[INSTALLED];
}

/** Whether `subtle` runs these operations on the calling thread. */
export function inlineSubtleInstalled(subtle: SubtleCrypto = globalThis.crypto.subtle): boolean {
  return Boolean((subtle as Installed)[INSTALLED]);
}
