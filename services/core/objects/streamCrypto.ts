import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createMessage, decrypt, encrypt, enums, readMessage } from 'openpgp';
import { KeyError } from '../keys/errors.ts';
import { findPinnedByKeyId, keyStatus, ownDecryptionKeys, peerEncryptionKey, type OwnKeyring, type PeerKeyring } from '../keys/keyring.ts';
import { documentBytesStreamed } from '../runtime/youngGeneration.ts';
import { ObjectError } from './errors.ts';

/** What passed through a counting hash: byte count and lower-case hex SHA-256. */
export interface StreamDigest {
  /** Bytes seen. */
  bytes: number;
  /** Lower-case hex SHA-256 of them. */
  sha256: string;
}

/**
 * A pass-through that counts and hashes; fails with `tooLarge()` once more than `maxBytes` went through.
 * Every large document passes one (its plaintext, both ways), so it also paces the scavenges (youngGeneration.ts).
 */
export class DigestStream extends Transform {
  readonly #hash = createHash('sha256');
  readonly #maxBytes: number;
  readonly #tooLarge: () => Error;
  #bytes = 0;
  #digest: StreamDigest | undefined;

  constructor(maxBytes = Number.MAX_SAFE_INTEGER, tooLarge: () => Error = () => new RangeError(`more than ${maxBytes} bytes`)) {
    super();
    this.#maxBytes = maxBytes;
    this.#tooLarge = tooLarge;
  }

  /** The count and digest, once the stream has ended. */
  get digest(): StreamDigest | undefined {
    return this.#digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) return callback(this.#tooLarge());
    documentBytesStreamed(chunk.length);
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = { bytes: this.#bytes, sha256: this.#hash.digest('hex') };
    callback();
  }
}

/** Options for {@link sealStream}. */
export interface SealStreamOptions {
  /** Own keys: the current one signs. */
  own: OwnKeyring;
  /** Pinned peers: the newest valid key is encrypted to. */
  peers: PeerKeyring;
  /** Literal-data file name (the envelope id): binds the object to its envelope. */
  filename: string;
  /** Signature time; now by default. */
  now?: Date;
}

/**
 * Signs and encrypts a stream in one pass, exactly as `seal` does a message (SEIPDv1, no
 * compression: what GnuPG 2.2 reads), but binary and streamed: memory stays bounded whatever
 * the size. The result is a Node stream of the OpenPGP message (`gpg --decrypt` reads it).
 */
export async function sealStream(plaintext: Readable, options: SealStreamOptions): Promise<Readable> {
  const now = options.now ?? new Date();
  const status = await keyStatus(options.own.current, now);
  if (status === 'revoked' || status === 'expired') throw new KeyError(status === 'revoked' ? 'CR_KEY_REVOKED' : 'CR_KEY_EXPIRED', `own key ${options.own.fingerprint} is ${status}; rotate to a new key`);
  const recipient = await peerEncryptionKey(options.peers, now);
  const message = await createMessage({ binary: Readable.toWeb(plaintext) as unknown as ReadableStream<Uint8Array>, format: 'binary', filename: options.filename, date: now });
  const sealed = await encrypt({
    message,
    encryptionKeys: recipient.key,
    signingKeys: options.own.current,
    format: 'binary',
    date: now,
    config: { aeadProtect: false, preferredCompressionAlgorithm: enums.compression.uncompressed },
  });
  return Readable.fromWeb(sealed as unknown as WebReadableStream<Uint8Array>);
}

/** Options for {@link openStream}. */
export interface OpenStreamOptions {
  /** Own keys: any may decrypt. */
  own: OwnKeyring;
  /** Pinned peers. */
  peers: PeerKeyring;
  /** The peer service that must have signed (the envelope's `from`). */
  signer: string;
  /** Literal-data file name the object must carry (the envelope id). */
  filename: string;
  /** Plaintext size the signed pointer states. */
  bytes: number;
  /** Plaintext SHA-256 the signed pointer states. */
  sha256: string;
}

/**
 * Decrypts an object as a stream. The plaintext flows out as it is decrypted; its end is
 * held back until the signature, the size, the digest and the file name are checked, and the
 * stream fails with an ObjectError (`CR_OBJECT_*`) instead of ending when one does not hold.
 * A reader must therefore treat the bytes as unverified until the stream ends cleanly.
 */
export async function openStream(ciphertext: Readable, options: OpenStreamOptions): Promise<Readable> {
  let message;
  try {
    message = await readMessage({ binaryMessage: Readable.toWeb(ciphertext) as unknown as ReadableStream<Uint8Array> });
  } catch (err) {
    throw new ObjectError('CR_OBJECT_UNDECRYPTABLE', 'the object is not an OpenPGP message', { cause: err });
  }
  const verificationKeys = options.peers.pinned.filter((p) => p.service === options.signer).map((p) => p.key);
  if (verificationKeys.length === 0) throw new ObjectError('CR_OBJECT_SIGNATURE_INVALID', `no pinned key speaks for "${options.signer}"`);
  let result;
  try {
    result = await decrypt({
      message,
      decryptionKeys: ownDecryptionKeys(options.own),
      verificationKeys,
      expectSigned: false,
      format: 'binary',
      // SEIPDv1 authenticates at the end: the checks below hold the stream's end until then.
      config: { allowUnauthenticatedStream: true },
    });
  } catch (err) {
    throw new ObjectError('CR_OBJECT_UNDECRYPTABLE', 'cannot decrypt the object: not encrypted to an own key, or damaged', { cause: err });
  }
  const { signatures, filename } = result;
  const digest = new DigestStream();
  const check = async (): Promise<void> => {
    if (signatures.length !== 1) throw new ObjectError('CR_OBJECT_SIGNATURE_INVALID', `the object carries ${signatures.length} signatures; exactly one is expected`);
    const sig = signatures[0]!;
    const pinned = findPinnedByKeyId(options.peers, sig.keyID);
    if (!pinned || pinned.service !== options.signer) throw new ObjectError('CR_OBJECT_SIGNATURE_INVALID', `the object is not signed by a pinned key of "${options.signer}"`);
    try {
      await sig.verified;
    } catch (err) {
      throw new ObjectError('CR_OBJECT_SIGNATURE_INVALID', `the object's signature by ${pinned.fingerprint} does not verify`, { cause: err });
    }
    if (filename !== options.filename) throw new ObjectError('CR_OBJECT_DIGEST_MISMATCH', 'the object belongs to another envelope (literal file name)');
    const seen = digest.digest!;
    if (seen.bytes !== options.bytes) throw new ObjectError('CR_OBJECT_SIZE_MISMATCH', `the object decrypts to ${seen.bytes} bytes; the pointer says ${options.bytes}`);
    if (seen.sha256 !== options.sha256) throw new ObjectError('CR_OBJECT_DIGEST_MISMATCH', 'the object decrypts to bytes whose SHA-256 differs from the pointer');
  };
  const data = Readable.fromWeb(result.data as unknown as WebReadableStream<Uint8Array>);
  // The last chunk is held back until the checks pass: a reader never gets every byte of a bad object.
  let held: Buffer | undefined;
  const out = new Transform({
    transform: (chunk: Buffer, _enc, callback) => {
      const previous = held;
      held = chunk;
      callback(null, previous);
    },
    flush: (callback) => {
      check().then(() => callback(null, held), (err: unknown) => callback(err as Error));
    },
  });
  const fail = (err: unknown): void => {
    out.destroy(err instanceof ObjectError ? err : new ObjectError('CR_OBJECT_UNDECRYPTABLE', 'the object could not be decrypted (damaged or truncated)', { cause: err }));
  };
  data.on('error', fail);
  digest.on('error', fail);
  data.pipe(digest).pipe(out);
  out.on('close', () => {
    if (!data.destroyed) data.destroy();
  });
  return out;
}
