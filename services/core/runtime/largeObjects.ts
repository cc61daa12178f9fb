import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Envelope } from '../envelope/envelope.ts';
import type { ServiceKeys } from '../keys/load.ts';
import { createLargeOutbound, type LargeOutbound } from '../objects/largeOutbound.ts';
import { readObject, verifiedObjectOf, withLargeObjects } from '../objects/objectEffect.ts';
import { isPointerEnvelope } from '../objects/pointer.ts';
import { createObjectStore, type ObjectStore } from '../objects/objectStore.ts';
import type { EnvelopeEffect, EnvelopeEffects } from '../relay/inbound.ts';
import type { Outbound } from '../relay/outbound.ts';

/** The configuration fields of large documents (both services' config has them). */
export interface LargeObjectConfig {
  AWS_REGION: string;
  QUEUE_PREFIX: string;
  LARGE_OBJECT_BUCKET?: string | undefined;
  LARGE_OBJECT_S3_ENDPOINT?: string | undefined;
  LARGE_OBJECT_MAX_BYTES: number;
  LARGE_OBJECT_KMS_KEY_ID?: string | undefined;
}

/** A checked large payload, streamed. */
export interface LargeRead {
  /** Media type of the payload. */
  contentType: string;
  /** Plaintext size the signed pointer states. */
  bytes: number;
  /** The plaintext; the bytes count as checked only once it ends cleanly. */
  plaintext: Readable;
}

/** Receives of a message whose object is missing before it counts as bad (below every queue's maxReceiveCount). */
export const MISSING_OBJECT_RECEIVES = 3;

/** A service's large-document side: its bucket, its sending path and the wrapper of its receiving effects. */
export interface LargeObjects {
  /** The bucket. */
  store: ObjectStore;
  /** Streams documents into S3 and relays their pointers on `queue`. */
  outbound: LargeOutbound;
  /** Fetches and checks pointed-at objects before each effect, and deletes them once done; `alreadyApplied` is the effects' own dedupe (a missing object of an applied id is a duplicate). */
  receive(effects: EnvelopeEffects, alreadyApplied?: (envelope: Envelope) => Promise<boolean>): EnvelopeEffects;
  /**
   * The plaintext of an envelope whose object was checked on receipt: the very version that was
   * checked (its ETag), decrypted again as a stream and checked again as it goes (the stream
   * fails instead of ending on a mismatch). Undefined for an envelope without a checked object,
   * or when that version is gone.
   */
  read(envelope: Envelope): Promise<LargeRead | undefined>;
  /** Closes the S3 client. */
  close(): Promise<void>;
}

/** Sets up large documents when LARGE_OBJECT_BUCKET is set; undefined otherwise (payloads past one message get 413). */
export async function openLargeObjects(
  config: LargeObjectConfig,
  deps: { keys: ServiceKeys; logger: Logger; outbound: Outbound; queue: string },
): Promise<LargeObjects | undefined> {
  if (!config.LARGE_OBJECT_BUCKET) return undefined;
  // Loaded only when configured: the S3 client is a large module.
  const { S3Client } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    region: config.AWS_REGION,
    ...(config.LARGE_OBJECT_S3_ENDPOINT ? { endpoint: config.LARGE_OBJECT_S3_ENDPOINT, forcePathStyle: true } : {}),
  });
  const store = createObjectStore({ client, bucket: config.LARGE_OBJECT_BUCKET, kmsKeyId: config.LARGE_OBJECT_KMS_KEY_ID });
  const outbound = createLargeOutbound({
    outbound: deps.outbound,
    store,
    keys: deps.keys,
    queue: deps.queue,
    queuePrefix: config.QUEUE_PREFIX,
    maxBytes: config.LARGE_OBJECT_MAX_BYTES,
    logger: deps.logger,
  });
  return {
    store,
    outbound,
    receive: (effects, alreadyApplied) => withLargeObjects(effects, { store, keys: deps.keys, queuePrefix: config.QUEUE_PREFIX, missingAttempts: MISSING_OBJECT_RECEIVES, logger: deps.logger, alreadyApplied }),
    async read(envelope) {
      const object = verifiedObjectOf(envelope);
      if (!object) return undefined;
      const found = await readObject(store, deps.keys, envelope, object);
      if (found.status === 'missing') return undefined;
      return { contentType: object.pointer.contentType, bytes: object.pointer.bytes, plaintext: found.plaintext };
    },
    close: async () => client.destroy(),
  };
}

/**
 * A service's receiving effects with large documents: checked through `large` when
 * LARGE_OBJECT_BUCKET is set; otherwise an envelope that points at an object is dead-lettered
 * (`CR_OBJECT_STORE_NOT_CONFIGURED`: redrive it once the bucket is configured), never handed
 * to an effect that would take the pointer for the payload.
 */
export function receiveLargeObjects(large: LargeObjects | undefined, effects: EnvelopeEffects, alreadyApplied?: (envelope: Envelope) => Promise<boolean>): EnvelopeEffects {
  if (large) return large.receive(effects, alreadyApplied);
  const refuse = (effect: EnvelopeEffect): EnvelopeEffect => async (envelope, message, signal) =>
    isPointerEnvelope(envelope) ? { status: 'dead-letter', reason: 'CR_OBJECT_STORE_NOT_CONFIGURED' } : effect(envelope, message, signal);
  return Object.fromEntries(Object.entries(effects).map(([kind, effect]) => [kind, refuse(effect)]));
}
