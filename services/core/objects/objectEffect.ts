import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Envelope } from '../envelope/envelope.ts';
import type { ServiceKeys } from '../keys/load.ts';
import { overlapsReceivedAudit, type EnvelopeEffect, type EnvelopeEffects } from '../relay/inbound.ts';
import type { HandlerResult, ReceivedMessage } from '../transport/consumerTypes.ts';
import { isObjectError } from './errors.ts';
import type { ObjectStore } from './objectStore.ts';
import { isPointerEnvelope, readPointer, type ObjectPointer } from './pointer.ts';
import { openStream } from './streamCrypto.ts';

/** A pointed-at object that was read whole and checked: the ETag pins exactly that version for later reads. */
export interface VerifiedObject {
  /** The signed pointer. */
  pointer: ObjectPointer;
  /** ETag of the version that was checked. */
  etag: string;
}

/** Options for {@link withLargeObjects}. */
export interface LargeObjectsOptions {
  /** The bucket. */
  store: ObjectStore;
  /** This service's keys (decrypt; the sender's pinned keys verify). */
  keys: ServiceKeys;
  /** QUEUE_PREFIX (objects live under `<prefix><queue>/`). */
  queuePrefix: string;
  /** Receives of a message whose object is missing before it is quarantined (`CR_OBJECT_MISSING`). */
  missingAttempts: number;
  /** Service logger. */
  logger: Logger;
  /**
   * The effect's own dedupe (the app's apply ledger, the interface's delivery ledger): whether the
   * envelope was already applied. Asked only when its object is missing: a late copy of an applied
   * envelope, whose object was deleted once it was done, is then a duplicate rather than quarantined.
   */
  alreadyApplied?: ((envelope: Envelope) => Promise<boolean>) | undefined;
  /** Objects fetched and checked at once (default {@link OBJECT_CHECKS}); more messages wait their turn. */
  concurrency?: number | undefined;
}

/**
 * Objects a service fetches and checks at once by default: each check is a streamed S3 read and
 * decryption, and a queue may hand over thousands of messages at once (the app's INBOX_CAPACITY).
 */
export const OBJECT_CHECKS = 4;

/** At most `size` holders at once; the others wait in order, and a waiter whose signal aborts leaves the line (undefined). */
function limiter(size: number): (signal: AbortSignal) => Promise<(() => void) | undefined> {
  let active = 0;
  const waiting: Array<() => void> = [];
  // A place given up goes straight to the next waiter: a newcomer cannot slip in between.
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  };
  return async (signal) => {
    if (signal.aborted) return undefined;
    if (active < size) {
      active += 1;
      return release;
    }
    return new Promise((resolve) => {
      const go = (): void => {
        signal.removeEventListener('abort', leave);
        resolve(release);
      };
      const leave = (): void => {
        waiting.splice(waiting.indexOf(go), 1);
        resolve(undefined);
      };
      waiting.push(go);
      signal.addEventListener('abort', leave, { once: true });
    });
  };
}

const verified = new WeakMap<Envelope, VerifiedObject>();

/** The checked object of an envelope that carried a pointer (set before its effect runs), or undefined. */
export function verifiedObjectOf(envelope: Envelope): VerifiedObject | undefined {
  return verified.get(envelope);
}

/** Opens an object as a checked plaintext stream (signature, size, digest and envelope binding verified at its end). */
export async function readObject(store: ObjectStore, keys: ServiceKeys, envelope: Envelope, object: Pick<VerifiedObject, 'pointer'> & { etag?: string }) {
  const found = await store.read(object.pointer.key, object.etag);
  if (found.status === 'missing') return found;
  const plaintext = await openStream(found.body, {
    own: keys.own,
    peers: keys.peers,
    signer: envelope.from,
    filename: envelope.id,
    bytes: object.pointer.bytes,
    sha256: object.pointer.sha256,
  });
  return { status: 'found' as const, plaintext, etag: found.etag };
}

const discard = (): Writable => new Writable({ write: (_chunk, _enc, callback) => callback() });

/**
 * Wraps each effect so that an envelope pointing at a sealed object has it fetched and checked
 * first, as a stream with bounded memory: decrypted with an own key, signed by the envelope
 * sender's pinned key, of the stated size and SHA-256, and made for this envelope. Any mismatch
 * quarantines with its `CR_OBJECT_*` code; a missing object is a duplicate when the effect's
 * own dedupe says the envelope was applied (`alreadyApplied`: a late copy), else it is retried,
 * then quarantined. At most `concurrency` objects are checked at once. Once the queue message is
 * deleted after the effect (or it was a duplicate), the object is deleted.
 */
export function withLargeObjects(effects: EnvelopeEffects, options: LargeObjectsOptions): EnvelopeEffects {
  const checkTurn = limiter(options.concurrency ?? OBJECT_CHECKS);
  const wrap = (effect: EnvelopeEffect): EnvelopeEffect => {
    // An effect overlapping the `message.received` write stays so, given the write (awaited by it).
    const wrapped = (envelope: Envelope, message: ReceivedMessage, signal: AbortSignal, received?: Promise<void>): Promise<HandlerResult> =>
      isPointerEnvelope(envelope) ? withObject(effect, envelope, message, signal, received) : effect(envelope, message, signal, received);
    return effect.overlapsAudit ? overlapsReceivedAudit(wrapped) : wrapped;
  };
  const withObject = async (effect: EnvelopeEffect, envelope: Envelope, message: ReceivedMessage, signal: AbortSignal, received: Promise<void> | undefined): Promise<HandlerResult> => {
    const log = options.logger.child({ envelopeId: envelope.id });
    let object: VerifiedObject;
    const leaveTurn = await checkTurn(signal);
    if (!leaveTurn) return { status: 'release' };
    try {
      const pointer = readPointer(envelope, { bucket: options.store.bucket, queuePrefix: options.queuePrefix });
      const read = await readObject(options.store, options.keys, envelope, { pointer });
      if (read.status === 'missing') {
        // Deleted once its envelope was done: this is a late copy (an SQS duplicate, a sender's retry).
        if (await options.alreadyApplied?.(envelope)) {
          log.info({ code: 'CR_OBJECT_MISSING' }, 'large object already deleted: its envelope was applied; duplicate');
          return { status: 'duplicate' };
        }
        if (message.receiveCount < options.missingAttempts) return { status: 'retry', reason: 'CR_OBJECT_MISSING', afterSeconds: Math.min(60, 2 ** message.receiveCount) };
        log.warn({ code: 'CR_OBJECT_MISSING', receives: message.receiveCount }, 'large object missing');
        return { status: 'quarantine', reason: 'CR_OBJECT_MISSING' };
      }
      await pipeline(read.plaintext, discard(), { signal });
      object = { pointer, etag: read.etag };
    } catch (err) {
      if (signal.aborted) return { status: 'release' };
      if (isObjectError(err) && err.code !== 'CR_OBJECT_STORE_UNAVAILABLE') {
        log.warn({ code: err.code }, 'rejected large object');
        return { status: 'quarantine', reason: err.code };
      }
      log.warn({ code: isObjectError(err) ? err.code : (err as { name?: string }).name }, 'large object could not be read; retrying');
      return { status: 'retry', reason: 'CR_OBJECT_STORE_UNAVAILABLE' };
    } finally {
      leaveTurn();
    }
    verified.set(envelope, object);
    const result: HandlerResult = await effect(envelope, message, signal, received);
    const remove = (): void => {
      options.store.remove(object.pointer.key).catch((err: unknown) => log.warn({ code: (err as { name?: string }).name }, 'large object not deleted; the lifecycle rule will'));
    };
    if (result.status === 'duplicate') remove();
    if (result.status === 'done') {
      const inner = result.onDeleted;
      return {
        status: 'done',
        onDeleted: (deleted) => {
          inner?.(deleted);
          if (deleted) remove();
        },
      };
    }
    return result;
  };
  return Object.fromEntries(Object.entries(effects).map(([kind, effect]) => [kind, wrap(effect)]));
}
