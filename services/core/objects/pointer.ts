import { z } from 'zod';
import type { Envelope } from '../envelope/envelope.ts';
import { ObjectError } from './errors.ts';

/** Media type of an envelope body that points at a sealed object in S3 instead of carrying the payload. */
export const OBJECT_POINTER_TYPE = 'application/vnd.care-relay.object+json';

/** The signed pointer: where the sealed payload is, and what it must decrypt to. */
export interface ObjectPointer {
  /** S3 bucket. */
  bucket: string;
  /** Object key: `<QUEUE_PREFIX><queue>/<envelope id>.pgp`, or `<envelope id>.<attempt>.pgp` for a later upload of the same envelope. */
  key: string;
  /** Plaintext size in bytes. */
  bytes: number;
  /** Lower-case hex SHA-256 of the plaintext. */
  sha256: string;
  /** Media type of the payload. */
  contentType: string;
}

const pointerSchema = z.strictObject({
  bucket: z.string().min(3).max(63),
  key: z.string().min(1).max(1024),
  bytes: z.number().int().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  contentType: z.string().min(1).max(255),
});

/**
 * The key of an envelope's object: under the sending direction's prefix, named after the envelope;
 * with `attempt` (16 lower-case hex digits), the key of a later upload of the same envelope (a
 * retry that took over its Idempotency-Key), which must never replace the object another upload relayed.
 */
export function objectKey(queuePrefix: string, queue: string, envelopeId: string, attempt?: string): string {
  return `${queuePrefix}${queue}/${envelopeId}${attempt === undefined ? '' : `.${attempt}`}.pgp`;
}

/** True when `key` is one of this envelope's object keys ({@link objectKey}, with or without an attempt). */
function isKeyOf(key: string, queuePrefix: string, queue: string, envelopeId: string): boolean {
  const base = `${queuePrefix}${queue}/${envelopeId}`;
  return key.startsWith(base) && /^(\.[0-9a-f]{16})?\.pgp$/.test(key.slice(base.length));
}

/** The pointer body (JSON, fields in a fixed order). */
export function encodePointer(pointer: ObjectPointer): string {
  const { bucket, key, bytes, sha256, contentType } = pointer;
  return JSON.stringify({ bucket, key, bytes, sha256, contentType });
}

/** True when the envelope carries a pointer rather than the payload. */
export function isPointerEnvelope(envelope: Pick<Envelope, 'contentType'>): boolean {
  return envelope.contentType === OBJECT_POINTER_TYPE;
}

/**
 * Reads and checks an opened envelope's pointer: well-formed, in this deployment's bucket, and
 * at a key of this envelope on its queue (a pointer cannot be steered to another
 * object). Throws ObjectError `CR_OBJECT_POINTER_INVALID`.
 */
export function readPointer(envelope: Envelope, expected: { bucket: string; queuePrefix: string }): ObjectPointer {
  let value: unknown;
  try {
    value = JSON.parse(envelope.body);
  } catch {
    throw new ObjectError('CR_OBJECT_POINTER_INVALID', 'the pointer is not JSON');
  }
  const parsed = pointerSchema.safeParse(value);
  if (!parsed.success) throw new ObjectError('CR_OBJECT_POINTER_INVALID', `pointer field "${parsed.error.issues[0]!.path.join('.')}" is invalid`);
  const pointer = parsed.data;
  if (pointer.bucket !== expected.bucket) throw new ObjectError('CR_OBJECT_POINTER_INVALID', 'the pointer names another bucket');
  if (!isKeyOf(pointer.key, expected.queuePrefix, envelope.queue, envelope.id)) throw new ObjectError('CR_OBJECT_POINTER_INVALID', 'the pointer names a key that is not this envelope\'s');
  return pointer;
}

/** The payload's media type and size, whether carried in the envelope or pointed at. */
export function payloadOf(envelope: Envelope): { contentType: string; bytes: number } {
  if (isPointerEnvelope(envelope)) {
    const p = pointerSchema.safeParse(JSON.parse(envelope.body));
    if (p.success) return { contentType: p.data.contentType, bytes: p.data.bytes };
  }
  const bytes = envelope.bodyEncoding === 'base64' ? Buffer.from(envelope.body, 'base64').length : Buffer.byteLength(envelope.body, 'utf8');
  return { contentType: envelope.contentType, bytes };
}
