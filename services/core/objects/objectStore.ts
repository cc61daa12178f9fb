import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ObjectError } from './errors.ts';
import { uploadInParts } from './multipartUpload.ts';

/** Multipart part size: S3's minimum. An upload holds two part buffers (one uploading, one filling): 10 MiB. */
export const PART_BYTES = 5 * 1024 * 1024;

/** The bucket a service's sealed large objects live in, and how they are encrypted at rest. */
export interface ObjectStoreOptions {
  /** S3 client (path-style for emulators). */
  client: S3Client;
  /** Bucket name. */
  bucket: string;
  /** SSE-KMS key id or ARN; S3's default bucket encryption when absent. */
  kmsKeyId?: string | undefined;
}

/** What a read finds: the object's stream and ETag, or that it is not there. */
export type ObjectRead = { status: 'found'; body: Readable; etag: string } | { status: 'missing' };

/** The S3 side of large documents: streamed multipart upload, streamed read, delete. */
export interface ObjectStore {
  /** The bucket. */
  readonly bucket: string;
  /**
   * Uploads a stream (multipart past one part); a failed or aborted upload leaves no object and no parts. Resolves with the ETag.
   * With `ifAbsent`, an object already at `key` is never replaced: the upload fails ({@link isObjectConflict}).
   */
  upload(key: string, body: Readable, signal?: AbortSignal, options?: { ifAbsent?: boolean }): Promise<string>;
  /** Reads an object as a stream; with `etag`, only that version (an object replaced since reads as missing). */
  read(key: string, etag?: string): Promise<ObjectRead>;
  /** Deletes an object (absent is fine). */
  remove(key: string): Promise<void>;
}

/** An upload with `ifAbsent` found an object already stored at its key (S3's 412, or 409 for a concurrent conditional write): 503, retry. */
export class ObjectConflictError extends ObjectError {
  constructor(cause: unknown) {
    super('CR_OBJECT_STORE_UNAVAILABLE', 'an object is already stored at this key; this upload was not kept', { cause });
    this.name = 'ObjectConflictError';
  }
}

/** True when an upload with `ifAbsent` failed because an object was already stored at its key. */
export function isObjectConflict(err: unknown): err is ObjectConflictError {
  return err instanceof ObjectConflictError;
}

function isConflict(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'PreconditionFailed' || e.name === 'ConditionalRequestConflict' || e.$metadata?.httpStatusCode === 412 || e.$metadata?.httpStatusCode === 409;
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 404 || e.$metadata?.httpStatusCode === 412;
}

/** Creates the object store of one bucket. */
export function createObjectStore(options: ObjectStoreOptions): ObjectStore {
  const { client, bucket } = options;
  const encryption = options.kmsKeyId ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: options.kmsKeyId } : {};
  return {
    bucket,
    async upload(key, body, signal, uploadOptions = {}) {
      // Failing the source takes the same path as a client gone away: the parts are aborted below.
      const onAbort = (): void => {
        body.destroy(new ObjectError('CR_OBJECT_STORE_UNAVAILABLE', 'upload aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await uploadInParts(client, { Bucket: bucket, Key: key, ContentType: 'application/pgp-encrypted', ...encryption }, body, PART_BYTES, uploadOptions);
      } catch (err) {
        // uploadInParts has aborted the multipart upload: no parts stay behind.
        if (err instanceof ObjectError) throw err;
        if (uploadOptions.ifAbsent && isConflict(err)) throw new ObjectConflictError(err);
        const sourceError = body.errored;
        if (sourceError) throw sourceError;
        throw new ObjectError('CR_OBJECT_STORE_UNAVAILABLE', 'the object store refused the upload', { cause: err });
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
    async read(key, etag) {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(etag ? { IfMatch: etag } : {}) }));
        return { status: 'found', body: out.Body as Readable, etag: String(out.ETag ?? '') };
      } catch (err) {
        if (isMissing(err)) return { status: 'missing' };
        throw new ObjectError('CR_OBJECT_STORE_UNAVAILABLE', 'the object store refused the read', { cause: err });
      }
    },
    async remove(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}
