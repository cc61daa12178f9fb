import type { Readable } from 'node:stream';
import type { Envelope } from '../../core/envelope/envelope.ts';
import type { ServiceKeys } from '../../core/keys/load.ts';
import { readObject, verifiedObjectOf } from '../../core/objects/objectEffect.ts';
import type { LargeObjects } from '../../core/runtime/largeObjects.ts';

/**
 * Reads a large inbox record: the inbox keeps only the pointer of a document that came
 * through S3; each read decrypts the very version that was checked on receipt (its ETag)
 * as a stream, checked again as it goes. Undefined when that version is gone.
 */
export function largeRecordReader(large: LargeObjects, keys: ServiceKeys) {
  return async (envelope: Envelope): Promise<{ contentType: string; bytes: number; plaintext: Readable } | undefined> => {
    const object = verifiedObjectOf(envelope);
    if (!object) return undefined;
    const read = await readObject(large.store, keys, envelope, object);
    if (read.status === 'missing') return undefined;
    return { contentType: object.pointer.contentType, bytes: object.pointer.bytes, plaintext: read.plaintext };
  };
}
