import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { AuditError } from '../audit/errors.ts';
import type { AuditEvent } from '../audit/types.ts';
import { httpErrors } from '../http/errors.ts';
import { uuidv7 } from '../envelope/uuidv7.ts';
import type { ServiceKeys } from '../keys/load.ts';
import { silentLogger } from '../log/logger.ts';
import type { Outbound, RelayedCopy } from '../relay/outbound.ts';
import { ObjectError } from './errors.ts';
import type { ObjectStore } from './objectStore.ts';
import { OBJECT_POINTER_TYPE, encodePointer, objectKey } from './pointer.ts';
import { DigestStream, sealStream } from './streamCrypto.ts';

/** A payload too large for one SQS message, as a stream. */
export interface LargePayload {
  /** Envelope id decided beforehand (idempotency); a fresh UUIDv7 otherwise. */
  id?: string;
  /** Envelope kind. */
  kind: string;
  /** Canonical media type of the payload. */
  contentType: string;
  /** The payload bytes, read once; never logged. */
  body: Readable;
  /** Partner id (submissions). */
  partner?: string;
  /** Who asked, for the audit trail. */
  actor: string;
  /** Source address, for the audit trail. */
  sourceIp?: string;
  /** Aborts the upload (the client went away): no object stays behind. */
  signal?: AbortSignal;
  /** Ordering bucket on an ordered FIFO queue (chart updates), as for a small payload. */
  orderingKey?: string;
  /** The caller's audit event, recorded with the pointer's `message.relayed` in one write (`OutboundPayload.auditWith`). */
  auditWith?: AuditEvent;
  /**
   * Stores the object under a key of this upload's own (`<id>.<attempt>.pgp`): for a later upload of
   * an envelope id another upload may already have stored (a retry that took over its Idempotency-Key).
   */
  separateObject?: boolean;
  /**
   * Runs once the object is stored and the body's size and SHA-256 are known, before the pointer is
   * sent (the Idempotency-Key claim records them); a throw removes this upload's object and relays nothing.
   */
  beforeRelay?: (seen: { bytes: number; sha256: string }) => Promise<void>;
}

/** Options for {@link createLargeOutbound}. */
export interface LargeOutboundOptions {
  /** The small-message path: sends the pointer envelope. */
  outbound: Outbound;
  /** Where sealed objects go. */
  store: ObjectStore;
  /** This service's keys (streamed sealing runs on this thread). */
  keys: ServiceKeys;
  /** Logical queue of the direction (key prefix and envelope `queue`). */
  queue: string;
  /** QUEUE_PREFIX: objects live under `<prefix><queue>/`. */
  queuePrefix: string;
  /** Largest payload, bytes (LARGE_OBJECT_MAX_BYTES). */
  maxBytes: number;
  /** pino logger; silent by default. */
  logger?: Logger;
}

/** Seals a large payload as a stream into S3, then sends the signed pointer on the queue. */
export interface LargeOutbound {
  /** Largest payload accepted, bytes. */
  readonly maxBytes: number;
  /** Streams, seals, uploads and relays the pointer; resolves with the envelope id once SQS accepted it. Throws 413 past the limit. */
  send(payload: LargePayload): Promise<{ id: string; bytes: number }>;
  /** The pointer's audit lines written again, marked `copy` (`Outbound.recordCopy`); nothing is sent. */
  recordCopy(copy: RelayedCopy): Promise<void>;
}


/**
 * The large-document path: plaintext → count and hash (refusing past the limit) → sign and
 * encrypt (streamed) → multipart upload; then an ordinary sealed envelope whose body is the
 * pointer (bucket, key, size, SHA-256) goes to SQS. A failure at any step leaves no object.
 * The object is written only where none is (`If-None-Match: *`): an upload never replaces
 * another's object, so the object a failed send removes is always its own.
 */
export function createLargeOutbound(options: LargeOutboundOptions): LargeOutbound {
  const log = options.logger ?? silentLogger;
  const { store, keys, maxBytes } = options;
  return {
    maxBytes,
    recordCopy: (copy) => options.outbound.recordCopy(copy),
    async send(payload) {
      const id = payload.id ?? uuidv7();
      const key = objectKey(options.queuePrefix, options.queue, id, payload.separateObject ? randomBytes(8).toString('hex') : undefined);
      const digest = new DigestStream(maxBytes, () => httpErrors.bodyTooLarge(maxBytes));
      const fed = pipeline(payload.body, digest).catch(() => undefined);
      try {
        const sealed = await sealStream(digest, { own: keys.own, peers: keys.peers, filename: id });
        await store.upload(key, sealed, payload.signal, { ifAbsent: true });
      } catch (err) {
        payload.body.destroy();
        throw digest.errored ?? err;
      }
      await fed;
      const seen = digest.digest;
      if (!seen) {
        await store.remove(key).catch(() => undefined);
        throw new ObjectError('CR_OBJECT_STORE_UNAVAILABLE', 'the payload stream ended early');
      }
      try {
        await payload.beforeRelay?.(seen);
      } catch (err) {
        await store.remove(key).catch(() => undefined);
        throw err;
      }
      const pointer = encodePointer({ bucket: store.bucket, key, bytes: seen.bytes, sha256: seen.sha256, contentType: payload.contentType });
      try {
        await options.outbound.send({
          id,
          kind: payload.kind,
          contentType: OBJECT_POINTER_TYPE,
          bodyEncoding: 'utf8',
          body: Buffer.from(pointer, 'utf8'),
          ...(payload.partner ? { partner: payload.partner } : {}),
          actor: payload.actor,
          ...(payload.sourceIp ? { sourceIp: payload.sourceIp } : {}),
          ...(payload.orderingKey === undefined ? {} : { orderingKey: payload.orderingKey }),
          ...(payload.auditWith ? { auditWith: payload.auditWith } : {}),
        });
      } catch (err) {
        // Not relayed: the object would be an orphan. An audit failure comes only after SQS took the pointer
        // (`Outbound.send`): the receiver will fetch the object, so it stays.
        if (!(err instanceof AuditError)) await store.remove(key).catch(() => undefined);
        throw err;
      }
      log.info({ envelopeId: id, queue: options.queue, bytes: seen.bytes }, 'large object relayed');
      return { id, bytes: seen.bytes };
    },
  };
}
