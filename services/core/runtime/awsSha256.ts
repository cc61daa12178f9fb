import { createHash, createHmac, createSecretKey, type Hash, type Hmac, type KeyObject } from 'node:crypto';

/** What the AWS SDK hands a `sha256` constructor as an HMAC key. */
type Secret = string | ArrayBuffer | ArrayBufferView;

/** Most HMAC keys kept; the cache is emptied when it is full (a handful are in use at a time). */
export const HMAC_KEY_CACHE_SIZE = 32;

const keyObjects = new Map<string, KeyObject>();

function secretBytes(secret: Secret): Buffer {
  if (typeof secret === 'string') return Buffer.from(secret, 'utf8');
  if (ArrayBuffer.isView(secret)) return Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  return Buffer.from(secret);
}

/** The HMAC key as a KeyObject, made once per distinct key. */
function hmacKey(secret: Secret): KeyObject | Buffer {
  const bytes = secretBytes(secret);
  if (bytes.length === 0) return bytes;
  const id = bytes.toString('base64');
  let key = keyObjects.get(id);
  if (key === undefined) {
    if (keyObjects.size >= HMAC_KEY_CACHE_SIZE) keyObjects.clear();
    key = createSecretKey(bytes);
    keyObjects.set(id, key);
  }
  return key;
}

/**
 * SHA-256 and HMAC-SHA-256 for the AWS SDK clients' request signing (SigV4), given to a client as
 * its `sha256` option. It computes exactly what the SDK's own Node class does; the difference is
 * the HMAC key. Node 24 turns a key given as bytes into a key object on every `createHmac` (about
 * 20 µs here, five times the HMAC itself), and SigV4 makes two HMACs per request with keys that
 * change once a day or when the credentials rotate: the AWS secret key (for the SDK's signing-key
 * cache) and the day's signing key. So each distinct key becomes a `KeyObject` once and is reused
 * (docs/benchmarks.md, "Request signing: an HMAC key made once").
 *
 * Security: the keys kept are the ones the SDK already keeps in memory (the credentials, its own
 * signing-key cache); at most {@link HMAC_KEY_CACHE_SIZE}, never logged, gone with the process.
 */
export class AwsSha256 {
  readonly digestLength = 32;
  readonly #secret: Secret | undefined;
  #hash: Hash | Hmac;
  #finished = false;

  constructor(secret?: Secret) {
    // As the SDK's class: an empty string is no key (a plain hash), empty bytes are an empty key.
    this.#secret = secret || undefined;
    this.#hash = this.#create();
  }

  update(data: Uint8Array): void {
    if (this.#finished) throw new Error('Attempted to update an already finished hash.');
    this.#hash.update(data);
  }

  /** The digest; a plain hash can go on being updated after it (as the SDK's own class allows), an HMAC cannot. */
  async digest(): Promise<Uint8Array> {
    let bytes: Buffer;
    if (this.#secret === undefined) {
      bytes = (this.#hash as Hash).copy().digest();
    } else {
      this.#finished = true;
      bytes = this.#hash.digest();
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  reset(): void {
    this.#hash = this.#create();
    this.#finished = false;
  }

  #create(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', hmacKey(this.#secret));
  }
}
